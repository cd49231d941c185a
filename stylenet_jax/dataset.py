"""Read a dataset written by ``python -m data_prep.build`` (pure numpy, no JAX).

On disk (``DATA_DIR``)::

    manifest.json            {"format": "stylenet-jax-dataset", "version": 1,
                              "styles": [...], "songs": [...], "rejected": [...], ...}
    songs/<song id>.npz      inputs: uint8 (T, 176); velocities: uint8 (T, 88)

``velocities`` holds the MIDI velocity (0..127) on every active cell (onset and sustain) and
0 elsewhere, so the training target is ``velocities / 127``.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple, Sequence

import numpy as np

from stylenet_jax.encoding import velocities_to_target

MANIFEST = "manifest.json"
FORMAT = "stylenet-jax-dataset"
VERSION = 1


class Song(NamedTuple):
    """One encoded performance.

    inputs: uint8 (T, 176), per key [played now, held]; velocities: uint8 (T, 88).
    """

    id: str
    style: str
    inputs: np.ndarray
    velocities: np.ndarray

    @property
    def target(self) -> np.ndarray:
        """float32 (T, 88): velocity / 127 on active cells, 0 elsewhere."""
        return velocities_to_target(self.velocities)


class DatasetError(ValueError):
    """The dataset folder is missing, incomplete or of another format."""


def read_manifest(data_dir: str) -> dict:
    """Returns the parsed ``manifest.json`` of a built dataset; raises DatasetError if absent."""
    path = os.path.join(data_dir, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise DatasetError(
            f"{data_dir}: no {MANIFEST}; build one with "
            f"`python -m data_prep.build --midi_dir=... --out_dir={data_dir}`") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DatasetError(f"{path}: not a {FORMAT} v{VERSION} manifest")
    return manifest


def load_songs(data_dir: str, split: str | None = None,
               styles: Sequence[str] | None = None) -> list[Song]:
    """Loads the songs of ``split`` ("train", "validation" or None for all), in manifest order.

    ``styles`` keeps only songs of those styles (None: all).
    """
    manifest = read_manifest(data_dir)
    songs = []
    for entry in manifest["songs"]:
        if split is not None and entry["split"] != split:
            continue
        if styles is not None and entry["style"] not in styles:
            continue
        path = os.path.join(data_dir, entry["arrays"])
        try:
            with np.load(path) as arrays:
                inputs, velocities = arrays["inputs"], arrays["velocities"]
        except (OSError, KeyError, ValueError) as e:
            raise DatasetError(f"{path}: unreadable song arrays ({e}); rebuild the dataset") from None
        songs.append(Song(entry["id"], entry["style"], inputs, velocities))
    return songs


def dataset_styles(data_dir: str) -> list[str]:
    """The dataset's style names, in the order that defines each style's head index."""
    return list(read_manifest(data_dir)["styles"])
