"""Which of a file's notes stylize performs: the piano part, or the tracks / channels asked for.

A stylize-level choice only: ``midi.load_performance`` still reads every non-drum note (the
dataset builder and training read through it, unchanged), and ``performer.perform_file``
applies the choice afterwards. Unchosen notes keep their velocities byte for byte and are not
part of the model's input grid: the model reads (and hears) only the chosen notes.

Rules (``choose``):
- ``--tracks`` / ``--channels`` given: exactly the notes on those tracks and/or channels (both
  given: both must match). Tracks count from 0 as they lie in the file (in a format 1 file,
  track 0 is usually the tempo track); channels count from 1 as musicians do (1..16, shown as
  such in every message), channel 10 being drums, never performed.
- Otherwise, in a file with no program_change at all: every note (the paper's rule: the whole
  file is the piano part).
- Otherwise a note is performed when the program of its channel at the note's start is in the
  General MIDI piano family (programs 0-7, counted from 0), or when no program was set for its
  channel by then (General MIDI's default is program 0, a piano). The program is the last
  program_change at or before the note's tick on the same channel of the same track; when that
  track set none, the last one on that channel in any track.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import mido
import numpy as np

from stylenet_jax.notes import Notes

PIANO_PROGRAMS = range(0, 8)  # General MIDI's piano family, counted from 0
DRUM_CHANNEL = 9  # channel 10, counted from 0
NO_PROGRAM = -1


class SelectionError(ValueError):
    """A bad --tracks / --channels value; the message is one line."""


class Choice(NamedTuple):
    """``mask``: bool (n,), the notes to perform. ``note``: one line saying what is left out
    ("12 non-piano notes left as they were: programs 33, 48"), or why nothing was chosen when
    the mask is all False; "" when every note is performed."""

    mask: np.ndarray
    note: str


def parse_numbers(text: str | None, flag: str, low: int, high: int) -> tuple[int, ...] | None:
    """"0,2" -> (0, 2) (each in low..high, as typed); None or "" -> None. Raises
    SelectionError (one line) for anything else."""
    if text is None or not str(text).strip():
        return None
    numbers = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            number = int(part)
        except ValueError:
            raise SelectionError(f"--{flag}: {part!r} is not a number (give e.g. "
                                 f"--{flag}={low},{low + 1})") from None
        if not low <= number <= high:
            raise SelectionError(f"--{flag}: {number} is out of range {low}..{high}")
        numbers.append(number)
    return tuple(dict.fromkeys(numbers))


def parse_tracks(text: str | None) -> tuple[int, ...] | None:
    """--tracks: track numbers counted from 0, as they lie in the file."""
    return parse_numbers(text, "tracks", 0, 65535)


def parse_channels(text: str | None) -> tuple[int, ...] | None:
    """--channels: channels 1..16 as musicians count them; returns them counted from 0.
    Channel 10 (drums) is refused: drums are never performed."""
    channels = parse_numbers(text, "channels", 1, 16)
    if channels is None:
        return None
    if DRUM_CHANNEL + 1 in channels:
        raise SelectionError("--channels: 10 is the drum channel, which is never performed")
    return tuple(c - 1 for c in channels)


def _listed(numbers) -> str:
    return ", ".join(str(n) for n in sorted(set(int(x) for x in numbers)))


def _programs(numbers) -> str:
    """"program 33" or "programs 33, 48"."""
    listed = _listed(numbers)
    return f"program{'s' if ',' in listed else ''} {listed}"


def note_programs(midi: mido.MidiFile, notes: Notes) -> np.ndarray | None:
    """int (n,): each note's program (0..127) at its start, NO_PROGRAM where none was set
    (module rules); None when the file has no program_change at all."""
    own: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (track, channel) -> [(tick, prog)]
    anywhere: dict[int, list[tuple[int, int]]] = {}  # channel -> [(tick, program)]
    for number, track in enumerate(midi.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "program_change":
                own.setdefault((number, msg.channel), []).append((tick, msg.program))
                anywhere.setdefault(msg.channel, []).append((tick, msg.program))
    if not own:
        return None
    programs = np.full(len(notes), NO_PROGRAM, np.int64)

    def last_at(changes, starts):  # the last change at or before each start, NO_PROGRAM if none
        ticks = np.array([t for t, _ in changes], np.int64)
        values = np.array([p for _, p in changes], np.int64)
        order = np.argsort(ticks, kind="stable")  # stable: file order among equal ticks
        ticks, values = ticks[order], values[order]
        at = np.searchsorted(ticks, starts, side="right") - 1
        return np.where(at >= 0, values[np.maximum(at, 0)], NO_PROGRAM)

    for channel in np.unique(notes.channel).tolist():
        on_channel = notes.channel == channel
        if channel in anywhere:
            programs[on_channel] = last_at(anywhere[channel], notes.start[on_channel])
        for track in np.unique(notes.track[on_channel]).tolist():
            if (track, channel) in own:
                here = on_channel & (notes.track == track)
                mine = last_at(own[(track, channel)], notes.start[here])
                programs[here] = np.where(mine != NO_PROGRAM, mine, programs[here])
    return programs


def choose(midi: mido.MidiFile, notes: Notes, tracks: Sequence[int] | None = None,
           channels: Sequence[int] | None = None) -> Choice:
    """The notes of ``notes`` (read from ``midi``) to perform, by the module rules.
    ``tracks``: counted from 0; ``channels``: counted from 0 (``parse_channels``)."""
    if tracks is not None or channels is not None:
        mask = np.ones(len(notes), bool)
        asked = []
        if tracks is not None:
            mask &= np.isin(notes.track, np.array(tracks, np.int64))
            asked.append(f"--tracks={','.join(map(str, tracks))}")
        if channels is not None:
            mask &= np.isin(notes.channel, np.array(channels, np.int64))
            asked.append(f"--channels={','.join(str(c + 1) for c in channels)}")
        asked_text = " ".join(asked)
        if not mask.any():
            return Choice(mask, f"no notes on {asked_text} (notes are on tracks "
                                f"{_listed(notes.track)}, channels "
                                f"{_listed(notes.channel + 1)})")
        left = int((~mask).sum())
        return Choice(mask, f"{left} notes outside {asked_text} left as they were"
                      if left else "")
    programs = note_programs(midi, notes)
    if programs is None:
        return Choice(np.ones(len(notes), bool), "")
    mask = (programs == NO_PROGRAM) | np.isin(programs, np.array(PIANO_PROGRAMS))
    others = _programs(programs[~mask])
    if not mask.any():
        return Choice(mask, f"no piano notes ({others} only): use --channels or "
                            "--tracks to choose")
    left = int((~mask).sum())
    return Choice(mask, f"{left} non-piano notes left as they were: {others}"
                  if left else "")
