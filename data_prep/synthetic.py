"""Small generated MIDI corpora with style-dependent dynamics, for tests and smoke runs.

Each style plays the same kind of music (a melody over a bass line, on the 1/16 grid, 4/4,
two tracks: right and left hand) with its own velocity rule, so a model can learn to tell
them apart:
- ``classical``: phrase arcs (crescendo and diminuendo over two bars), melody over bass;
- ``jazz``: accents on the off-beats, soft downbeats;
- ``pop``: loud, flat melody over a soft bass;
- any other name: a seeded mix of the three.
A little seeded noise gives every file well over 20 distinct velocities (the paper's filter).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import mido
import numpy as np

TICKS_PER_BEAT = 480
_STEP = TICKS_PER_BEAT // 4


def _velocity(style: str, step: np.ndarray, melody: bool, rng: np.random.Generator) -> np.ndarray:
    """Velocities (int, 1..127) of notes at the given steps for one hand of one style."""
    if style == "classical":
        base = 45 + 40 * np.sin(np.pi * (step % 32) / 32) + (15 if melody else -10)
    elif style == "jazz":
        base = np.where(step % 4 == 2, 95, 50) + (5 if melody else -5)
    elif style == "pop":
        base = np.full(step.shape, 100 if melody else 50)
    else:
        weights = rng.dirichlet(np.ones(3))
        base = sum(w * _velocity(s, step, melody, rng)
                   for w, s in zip(weights, ("classical", "jazz", "pop")))
    return np.clip(np.rint(base + rng.normal(0, 4, step.shape)), 1, 127).astype(int)


def _track(notes: list[tuple[int, int, int, int]], name: str) -> mido.MidiTrack:
    """A track from (start_tick, end_tick, pitch, velocity) notes, delta times in ticks."""
    events = []
    for start, end, pitch, velocity in notes:
        events.append((start, 1, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((end, 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def synthetic_song(style: str, steps: int, seed: int) -> mido.MidiFile:
    """A format-1, 4/4 MIDI file of about ``steps`` sixteenths in the given style's dynamics."""
    rng = np.random.default_rng(seed)
    melody, bass = [], []
    step = 0
    while step < steps:
        length = int(rng.choice([1, 2, 2, 4]))
        pitch = int(rng.integers(60, 84))
        melody.append((step, min(step + length, steps), pitch))
        step += length
    for step in range(0, steps, 4):
        root = int(rng.integers(36, 55))
        for pitch in (root, root + 7):
            bass.append((step, min(step + 4, steps), pitch))

    def with_velocities(notes, is_melody):
        starts = np.array([s for s, _, _ in notes])
        velocities = _velocity(style, starts, is_melody, rng)
        return [(s * _STEP, e * _STEP, p, int(v)) for (s, e, p), v in zip(notes, velocities)]

    conductor = mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        mido.MetaMessage("set_tempo", tempo=500000, time=0),
        mido.MetaMessage("end_of_track", time=0),
    ])
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks += [conductor, _track(with_velocities(melody, True), "right hand"),
                    _track(with_velocities(bass, False), "left hand")]
    return midi


def write_synthetic_corpus(out_dir: str, *, styles: Sequence[str] = ("classical", "jazz"),
                           songs_per_style: int = 8, steps: int = 400, seed: int = 0) -> list[str]:
    """Writes ``<out_dir>/<style>/<style>_<k>.mid`` files; returns their paths (sorted).

    Deterministic in ``seed``; song lengths vary from ``steps // 2`` to ``steps`` sixteenths.
    """
    rng = np.random.default_rng(seed)
    paths = []
    for style in styles:
        os.makedirs(os.path.join(out_dir, style), exist_ok=True)
        for k in range(songs_per_style):
            length = int(rng.integers(max(steps // 2, 1), steps + 1))
            path = os.path.join(out_dir, style, f"{style}_{k:03d}.mid")
            synthetic_song(style, length, seed=int(rng.integers(2**31))).save(path)
            paths.append(path)
    return sorted(paths)


def build_in_workdir(workdir: str, data, seed: int,
                     log: Callable[[str], None] | None = None) -> str:
    """The dataset ``experiments.train`` uses without ``--data_dir``: a corpus generated from
    ``data`` (a ``config.DataConfig``: ``synthetic_*`` fields) and ``seed``, written to
    ``workdir/data/midi`` and built into ``workdir/data/dataset``; an existing build there is
    reused. Returns the dataset directory."""
    from data_prep import build
    from stylenet_jax import dataset

    out = os.path.join(workdir, "data", "dataset")
    try:
        dataset.read_manifest(out)
        return out
    except dataset.DatasetError:
        pass
    midi_dir = os.path.join(workdir, "data", "midi")
    write_synthetic_corpus(midi_dir, styles=tuple(data.synthetic_styles),
                           songs_per_style=data.synthetic_songs_per_style,
                           steps=data.synthetic_steps, seed=seed)
    build.build_dataset(midi_dir, out, seed=seed, workers=1,
                        validation_fraction=data.synthetic_validation_fraction,
                        log=log or (lambda line: None))
    return out
