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

from stylenet_jax.encoding import INPUT_SIZE, NUM_KEYS, velocities_to_target

MANIFEST = "manifest.json"
FORMAT = "stylenet-jax-dataset"
VERSION = 1
SONG_FIELDS = ("id", "style", "arrays", "split")  # what every manifest song entry holds


class Song(NamedTuple):
    """One encoded performance.

    inputs: uint8 (T, 176), per key [played now, held]; velocities: uint8 (T, 88);
    seconds_per_beat: its mean tempo (``tempo.mean_seconds_per_beat``), None in a build made
    before songs had one; prior: uint8 (T, 88) the tree baseline's velocities on the same grid
    (``tree_prior``), None unless attached for a hybrid network; piece: the piece it performs
    (the manifest's, e.g. "Bach/Fugue_bwv_846"), None where the manifest has none.
    """

    id: str
    style: str
    inputs: np.ndarray
    velocities: np.ndarray
    seconds_per_beat: float | None = None
    prior: np.ndarray | None = None
    piece: str | None = None

    @property
    def target(self) -> np.ndarray:
        """float32 (T, 88): velocity / 127 on active cells, 0 elsewhere."""
        return velocities_to_target(self.velocities)


class DatasetError(ValueError):
    """The dataset folder is missing, incomplete or of another format."""


def read_manifest(data_dir: str) -> dict:
    """Returns the parsed ``manifest.json`` of a built dataset; raises DatasetError (one line)
    if it is absent, not JSON, of another format, or lacks its style list or song entries."""
    path = os.path.join(data_dir, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise DatasetError(
            f"{data_dir}: no {MANIFEST}; build one with "
            f"`python -m data_prep.build --midi_dir=... --out_dir={data_dir}`") from None
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise DatasetError(f"{path}: not valid JSON ({_first_line(e)})") from None
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or manifest.get("version") != VERSION):
        raise DatasetError(f"{path}: not a {FORMAT} v{VERSION} manifest")
    problem = _manifest_problem(manifest)
    if problem:
        raise DatasetError(f"{path}: {problem}; rebuild the dataset")
    return manifest


def _manifest_problem(manifest: dict) -> str | None:
    """Why a manifest of the right format cannot be read (one line), or None."""
    styles = manifest.get("styles")
    if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
        return "no list of style names ('styles')"
    songs = manifest.get("songs")
    if not isinstance(songs, list):
        return "no list of songs ('songs')"
    for i, entry in enumerate(songs):
        missing = [k for k in SONG_FIELDS if not isinstance(entry, dict) or k not in entry]
        if missing:
            return f"song entry {i} lacks {', '.join(missing)}"
    return None


def _first_line(x: object) -> str:
    lines = str(x).splitlines()
    return lines[0][:200] if lines else ""


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
        inputs, velocities = _read_song_arrays(os.path.join(data_dir, entry["arrays"]))
        songs.append(Song(entry["id"], entry["style"], inputs, velocities,
                          entry.get("seconds_per_beat"), piece=entry.get("piece")))
    return songs


def _read_song_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (T, 176), velocities (T, 88)) of one song file; raises DatasetError (one line)
    if it is missing, unreadable (truncated, corrupted, not an ``.npz``), lacks either array
    or their shapes do not fit."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            inputs, velocities = arrays["inputs"], arrays["velocities"]
    except Exception as e:  # noqa: BLE001 - zipfile, zlib, numpy raise many types
        raise DatasetError(f"{path}: unreadable song arrays ({type(e).__name__}: "
                           f"{_first_line(e)}); rebuild the dataset") from None
    t = inputs.shape[0] if inputs.ndim == 2 else -1
    if inputs.shape != (t, INPUT_SIZE) or velocities.shape != (t, NUM_KEYS):
        raise DatasetError(f"{path}: song arrays of shapes {inputs.shape} and "
                           f"{velocities.shape}, need (T, {INPUT_SIZE}) and (T, {NUM_KEYS}); "
                           f"rebuild the dataset")
    return inputs, velocities


def dataset_styles(data_dir: str) -> list[str]:
    """The dataset's style names, in the order that defines each style's head index."""
    return list(read_manifest(data_dir)["styles"])
