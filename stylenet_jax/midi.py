"""mido at the edge: a standard MIDI file's piano notes, the seconds of its ticks, and
velocities written back into a copy of it.

Note rules (the paper merged all hands/tracks into one piano part):
- Every note of every track and channel is a piano note, except channel 10 (drums; index 9).
  (What stylize performs of them is its own choice, ``note_selection``; what this module reads,
  and so the dataset, does not depend on it.)
- A note-on with velocity 0 is a note-off. Note-offs are paired with the open note of the same
  (track, channel, pitch); a note-off with no open note is ignored.
- A re-struck key (note-on while the same (track, channel, pitch) is still held) ends the held
  note at the new note-on's tick and starts a new note.
- A note still held at the end of the file ends at the file's last tick.
- Each note records the sustain and soft pedals' values on its channel at its onset (the last
  control change of that pedal at or before the onset's tick, from any track; 0 before any).

Each note keeps (track, index): where its note-on message is, so a velocity can be written back
into a copy of the ORIGINAL file with every other message untouched.

Reading the file's bytes (and its errors, ``smf.MidiError``) is ``stylenet_jax.smf``'s job;
saving a file is ``stylenet_jax.midi_files``'.
"""

from __future__ import annotations

import dataclasses

import mido
import numpy as np

from stylenet_jax.notes import PEDAL_CONTROLS, Notes
from stylenet_jax.smf import MidiError, one_line, read_file, shown

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0.


@dataclasses.dataclass(frozen=True)
class Performance:
    """A parsed MIDI file: the mido object, its piano notes and facts used for filtering."""

    path: str
    midi: mido.MidiFile
    notes: Notes
    time_signatures: tuple[tuple[int, int], ...]  # distinct (numerator, denominator), file order
    end_tick: int
    warnings: tuple[str, ...] = ()  # repairs made while reading (one line each, no path)

    @property
    def ticks_per_beat(self) -> int:
        """The file's ticks per quarter note."""
        return self.midi.ticks_per_beat


def _track_notes(track: mido.MidiTrack, track_number: int, rows: list,
                 signatures: list, pedal_moves: list) -> tuple[int, dict]:
    """Appends closed notes' (pitch, start, end, velocity, channel, track, index) rows, and
    each move of a pedal of PEDAL_CONTROLS as (tick, channel, pedal's place there, value).

    Returns the track's last tick and its still-held notes {(channel, pitch): (start, vel, idx)}.
    """
    tick = 0
    held: dict[tuple[int, int], tuple[int, int, int]] = {}  # (channel, pitch) -> (start, vel, idx)
    for index, msg in enumerate(track):
        tick += msg.time
        kind = msg.type
        if kind == "note_on" or kind == "note_off":
            if msg.channel == DRUM_CHANNEL:
                continue
            key = (msg.channel, msg.note)
            opened = held.pop(key, None)
            if opened is not None:
                rows.append((msg.note, opened[0], tick, opened[1], msg.channel, track_number,
                             opened[2]))
            if kind == "note_on" and msg.velocity > 0:
                held[key] = (tick, msg.velocity, index)
        elif kind == "time_signature":
            signatures.append((msg.numerator, msg.denominator))
        elif kind == "control_change" and msg.control in PEDAL_CONTROLS:
            pedal_moves.append((tick, msg.channel, PEDAL_CONTROLS.index(msg.control), msg.value))
    return tick, held


def _pedals_at_onsets(start: np.ndarray, channel: np.ndarray, moves: list) -> np.ndarray:
    """uint8 (n, len(PEDAL_CONTROLS)): each pedal's last value on each note's channel at or
    before its onset tick (0 before the first move); ``moves`` as ``_track_notes`` gives them,
    tracks in file order, so a stable sort by tick keeps each track's own order."""
    pedals = np.zeros((len(start), len(PEDAL_CONTROLS)), np.uint8)
    if not moves:
        return pedals
    table = np.array(moves, dtype=np.int64)
    table = table[np.argsort(table[:, 0], kind="stable")]
    for ch, place in {(int(c), int(k)) for _, c, k, _ in moves}:
        mine = table[(table[:, 1] == ch) & (table[:, 2] == place)]
        on_channel = channel == ch
        last = np.searchsorted(mine[:, 0], start[on_channel], side="right") - 1
        pedals[on_channel, place] = np.where(last >= 0, mine[np.maximum(last, 0), 3], 0)
    return pedals


def extract_notes(midi: mido.MidiFile) -> tuple[Notes, tuple[tuple[int, int], ...], int]:
    """All piano notes of all tracks (see module rules), with the pedals under each onset,
    distinct time signatures, last tick."""
    rows: list = []
    signatures: list = []
    pedal_moves: list = []
    open_notes = []
    end_tick = 0
    for number, track in enumerate(midi.tracks):
        last, held = _track_notes(track, number, rows, signatures, pedal_moves)
        end_tick = max(end_tick, last)
        open_notes += [(pitch, start, None, vel, ch, number, idx)
                       for (ch, pitch), (start, vel, idx) in held.items()]
    rows += [(p, s, end_tick, v, c, t, i) for p, s, _, v, c, t, i in open_notes]
    rows.sort(key=lambda r: (r[1], r[5], r[6]))
    table = np.array(rows, dtype=np.int64).reshape(-1, 7)
    notes = Notes(pitch=table[:, 0].astype(np.int16), start=table[:, 1], end=table[:, 2],
                  velocity=table[:, 3].astype(np.uint8), channel=table[:, 4].astype(np.uint8),
                  track=table[:, 5].astype(np.int32), index=table[:, 6].astype(np.int32),
                  pedals=_pedals_at_onsets(table[:, 1], table[:, 4], pedal_moves))
    return notes, tuple(dict.fromkeys(signatures)), end_tick


def load_performance(path: str) -> Performance:
    """Reads ``path`` into a Performance; raises MidiError with a one-line reason."""
    midi, warnings = read_file(path)
    try:
        notes, signatures, end_tick = extract_notes(midi)
    except (AttributeError, TypeError, ValueError) as e:
        raise MidiError(f"{shown(path)}: malformed MIDI events ({one_line(e)})") from None
    return Performance(path=path, midi=midi, notes=notes, time_signatures=signatures,
                       end_tick=end_tick, warnings=warnings)


def tick_seconds(midi: mido.MidiFile, ticks: np.ndarray) -> np.ndarray:
    """Seconds from the file's start of each absolute tick in ``ticks`` (int (n,)), float64 (n,),
    following every set_tempo event of every track (500,000 us per beat before the first)."""
    changes = {0: 500_000}
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                # a later track's change at one tick wins, as in mido's merge
                changes[tick] = msg.tempo
    at = np.array(sorted(changes), np.int64)
    tempo = np.array([changes[t] for t in at], np.float64)
    seconds_per_tick = tempo / 1e6 / midi.ticks_per_beat
    start_seconds = np.concatenate([[0.0], np.cumsum(np.diff(at) * seconds_per_tick[:-1])])
    ticks = np.asarray(ticks, np.int64)
    segment = np.searchsorted(at, ticks, side="right") - 1
    return start_seconds[segment] + (ticks - at[segment]) * seconds_per_tick[segment]


def with_velocities(midi: mido.MidiFile, notes: Notes, velocities: np.ndarray) -> mido.MidiFile:
    """A copy of ``midi`` in which note i's note-on has velocity ``velocities[i]`` (1..127).

    Every other message (and every other note-on) is the original, in the same order and
    track layout. velocities: integer (n,) array, one per note in ``notes``.
    """
    velocities = np.asarray(velocities)
    if velocities.shape != (len(notes),):
        raise ValueError(f"need {len(notes)} velocities, got shape {velocities.shape}")
    if len(velocities) and (velocities.min() < 1 or velocities.max() > 127):
        raise ValueError("note-on velocities must be in 1..127")
    tracks = [mido.MidiTrack(track) for track in midi.tracks]
    for track, index, velocity in zip(notes.track.tolist(), notes.index.tolist(),
                                      velocities.tolist()):
        tracks[track][index] = tracks[track][index].copy(velocity=int(velocity))
    out = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat,
                        charset=midi.charset)
    out.tracks = tracks
    return out
