"""Small 'human' performances for the evaluation tests: MIDI files with varied velocities in
STYLE/ folders, and note statistics for the constant and per-pitch baselines."""

from __future__ import annotations

import os

import numpy as np

from midi_factory import midi_file, notes_track, tempo, track
from stylenet_jax import evaluation


def performance_file(path: str, seed: int, bars: int = 8, tpb: int = 480) -> None:
    """A piano piece with varied velocities (the 'pianist'), a tempo change at bar 4."""
    rng = np.random.default_rng(seed)
    notes = []
    for beat in range(4 * bars):
        for pitch in rng.choice(np.arange(40, 90), size=rng.integers(1, 4), replace=False):
            start = beat * tpb + int(rng.integers(0, 2)) * tpb // 2
            notes.append((start, start + tpb // 2, int(pitch), int(rng.integers(20, 120))))
    conductor = track([tempo(100), tempo(140, 16 * tpb)])
    midi_file(conductor, notes_track(notes), ticks_per_beat=tpb).save(path)


# Note statistics for the constant and per-pitch baselines: classical at 70 with key k's mean
# velocity k (1..88), jazz at 40 with every key's mean 50.
RISING_CLASSICAL = evaluation.NoteStatistics({"classical": 70.0, "jazz": 40.0},
                                             {"classical": list(range(1, 89)),
                                              "jazz": [50.0] * 88})


def performance_folder(path) -> None:
    """Two classical performances (seeds 1 and 2) and one jazz (seed 3) in STYLE/ folders
    below ``path`` (a pathlib.Path)."""
    for style, seeds in (("classical", (1, 2)), ("jazz", (3,))):
        os.makedirs(path / style)
        for seed in seeds:
            performance_file(str(path / style / f"piece{seed}.mid"), seed)

