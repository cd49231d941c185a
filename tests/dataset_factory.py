"""Builds small datasets in ``stylenet_jax.dataset``'s on-disk format for tests, without MIDI
files or ``data_prep.build``: random notes whose velocities follow a per-style rule."""

from __future__ import annotations

import json
import os

import numpy as np

from stylenet_jax import dataset


def write_dataset(out: str, styles=("classical", "jazz"), n_train=4, n_val=1, steps=(60, 130),
                  seed=0, tempos=False) -> str:
    """Writes ``n_train`` training and ``n_val`` validation songs per style to ``out`` (ids
    ``<style>_<k>``, the validation ones last) and returns ``out``. ``tempos``: each song's
    manifest entry also has a ``seconds_per_beat``, 0.3 + 0.1 k for song k (else none, as in a
    build made before songs had a tempo).

    Each song has a random number of steps in ``steps`` (low inclusive, high exclusive) and
    about 8% of its cells held, half of those as onsets; its velocities follow a rule of the
    beat that differs between even and odd style indices, 0 on silent cells.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, "songs"), exist_ok=True)
    songs = []
    for si, style in enumerate(styles):
        for k in range(n_train + n_val):
            t = int(rng.integers(*steps))
            held = rng.random((t, 88)) < 0.08
            onset = held & (rng.random((t, 88)) < 0.5)
            inputs = np.stack([onset, held], -1).reshape(t, 176).astype(np.uint8)
            beat = np.arange(t)[:, None]
            rule = (40 + 60 * (beat % 4 == 2)) if si % 2 else (40 + 40 * np.sin(beat / 5.0))
            velocities = np.where(held, rule, 0).astype(np.uint8)
            sid = f"{style}_{k}"
            np.savez(os.path.join(out, "songs", f"{sid}.npz"), inputs=inputs,
                     velocities=velocities)
            songs.append({"id": sid, "style": style, "arrays": f"songs/{sid}.npz",
                          "split": "validation" if k >= n_train else "train"})
            if tempos:
                songs[-1]["seconds_per_beat"] = 0.3 + 0.1 * k
    with open(os.path.join(out, dataset.MANIFEST), "w") as f:
        json.dump({"format": dataset.FORMAT, "version": dataset.VERSION, "styles": list(styles),
                   "songs": songs, "rejected": []}, f)
    return out
