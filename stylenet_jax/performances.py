"""Human performances to judge a system on: MIDI files with their style and piece (no JAX).

A ``Performed`` is one file's in-range piano notes with the pianist's velocities, the onset of
each note in seconds, and the file's style and piece. ``from_dataset`` reads the files behind a
built dataset's split (``data_prep.build`` records each song's source file); ``from_folder``
reads any folder of human-performed MIDI (style from the first sub-folder, or given).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import NamedTuple

import numpy as np

from stylenet_jax import dataset, encoding, midi, midi_files, smf


class Performed(NamedTuple):
    """One human performance.

    notes: the file's piano notes of MIDI pitch 21..108 (``midi.Notes``, n notes), velocities
      as played; seconds: float64 (n,) onset of each note from the file's start.
    """

    id: str
    style: str
    piece: str
    path: str
    notes: midi.Notes
    ticks_per_beat: int
    seconds: np.ndarray


TIMINGS = ("performed", "score")
SCORE_SECONDS_PER_STEP = 0.125  # a score's tempo where a performance has one onset step only


def as_score(performed: Performed) -> Performed:
    """The performance's notes timed as a score would time them: each onset's ``seconds`` at
    its 1/16 step of one steady tempo, the performance's mean (its first to last onset).

    A pianist's rubato and a note's place before or after its grid step (what the pianist's
    timing says about the dynamics: the melody note played early and loud) are gone; the
    notes themselves (their ticks, and so their grid steps) are unchanged, and every system
    here reads time only through the grid and ``seconds``. seconds: float64 (n,).
    """
    onset, _ = encoding.quantize(performed.notes, performed.ticks_per_beat)
    seconds = np.asarray(performed.seconds, np.float64)
    span = int(onset.max() - onset.min()) if len(onset) else 0
    per_step = ((seconds.max() - seconds.min()) / span if span > 0
                else SCORE_SECONDS_PER_STEP)
    return performed._replace(seconds=onset.astype(np.float64) * per_step)


def with_timing(performed: Performed, timing: str) -> Performed:
    """``performed`` as played ("performed") or ``as_score`` ("score")."""
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {TIMINGS}, got {timing!r}")
    return as_score(performed) if timing == "score" else performed


def without_pedals(performed: Performed) -> Performed:
    """``performed`` with its notes' pedals unknown (``Notes.pedals`` None, read as no
    pedal): what a sheet-music file, which rarely holds a pianist's pedals, tells a system."""
    return performed._replace(notes=dataclasses.replace(performed.notes, pedals=None))


class PerformancesError(ValueError):
    """No performances could be read (one line naming why)."""


def load_performed(path: str, style: str, piece: str, song_id: str | None = None) -> Performed:
    """Reads one file; raises smf.MidiError (one line) if it is unreadable or has no notes."""
    perf = midi.load_performance(path)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    if not len(notes):
        raise smf.MidiError(f"{path}: no piano notes (MIDI 21..108 outside channel 10)")
    return Performed(song_id or os.path.splitext(os.path.basename(path))[0], style, piece, path,
                     notes, perf.ticks_per_beat, midi.tick_seconds(perf.midi, notes.start))


def from_dataset(data_dir: str, split: str, midi_root: str | None = None) -> list[Performed]:
    """The performances of a dataset split, read from their MIDI files.

    ``midi_root``: the folder the dataset was built from (default: the path the build
    recorded in its manifest, ``source``).
    """
    manifest = dataset.read_manifest(data_dir)
    root = midi_root or manifest.get("source", "")
    out = []
    for entry in manifest["songs"]:
        if entry["split"] != split:
            continue
        path = os.path.join(root, entry["file"])
        if not os.path.isfile(path):
            raise PerformancesError(f"{path}: source file of song {entry['id']} not found; "
                                    f"pass the folder the dataset was built from (--midi_dir)")
        out.append(load_performed(path, entry["style"], entry["piece"], entry["id"]))
    if not out:
        raise PerformancesError(f"{data_dir}: no songs in split {split!r}")
    return out


def from_folder(midi_dir: str, style: str | None = None,
                log=lambda line: None) -> list[Performed]:
    """Every readable MIDI file below ``midi_dir``; style = ``style`` or the first sub-folder
    (files in no sub-folder are skipped without ``style``); piece = ``manifest.csv``'s piece
    column if the folder has one, else the file's path. Unreadable files are reported to
    ``log`` and skipped."""
    if not os.path.isdir(midi_dir):
        raise PerformancesError(f"{midi_dir}: no such folder")
    catalogue = {}
    manifest = os.path.join(midi_dir, "manifest.csv")
    if os.path.isfile(manifest):
        with open(manifest, newline="", encoding="utf-8") as f:
            catalogue = {row["file"]: row for row in csv.DictReader(f) if row.get("file")}
    out = []
    for rel in midi_files.find_midi_files(midi_dir):
        file_style = style or (rel.split("/")[0] if "/" in rel else None)
        if file_style is None:
            log(f"skipped {rel}: no style (not in a sub-folder; give --style)")
            continue
        piece = catalogue.get(rel, {}).get("piece") or os.path.splitext(rel)[0]
        try:
            out.append(load_performed(os.path.join(midi_dir, rel), file_style, piece,
                                      os.path.splitext(rel)[0]))
        except smf.MidiError as e:
            log(f"skipped {e}")
    if not out:
        raise PerformancesError(f"{midi_dir}: no readable MIDI files with a style")
    return out
