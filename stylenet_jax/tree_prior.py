"""The tree baseline's velocities as a per-cell input of the network (``ModelConfig.tree_prior``;
pure numpy and scikit-learn, no JAX).

The gradient-boosted baseline (``feature_baseline``) plays closer to the pianists than the
network, and the two err differently (their velocities correlate 0.57 on held-out classical).
A hybrid network reads the tree's velocity of every note beside the notes themselves and
learns when to trust it. To learn that honestly, the tree's velocities on a training song must
come from trees that never saw it: ``out_of_fold_priors`` fits one baseline per fold of the
training *pieces* (every performance of a piece in one fold, as the held-out split is made)
and predicts each fold with the trees fitted on the others. Songs of the other splits get the
mean of the fold trees' velocities.

A prior grid is ``encoding.encode`` of the song's notes with the tree's velocities: uint8
(T, 88), the velocity on every active cell (onset and sustain) and 0 elsewhere, exactly like
the dataset's ``velocities``; the network reads it as ``velocities / 127``.

On disk (``PRIOR_DIR``, made by ``python -m experiments.tree_prior``)::

    priors.json            {"format": "stylenet-tree-priors", "version": 1, "data_dir": ...,
                            "folds": k, "seed": s, "songs": {song id: file}}
    songs/<n>.npz          velocities: uint8 (T, 88)
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from stylenet_jax import encoding
from stylenet_jax.atomic_write import write_atomically, write_text_atomically
from stylenet_jax.dataset import DatasetError

if TYPE_CHECKING:
    from stylenet_jax.dataset import Song
    from stylenet_jax.feature_baseline import FeatureBaseline
    from stylenet_jax.notes import Notes
    from stylenet_jax.performances import Performed

FORMAT = "stylenet-tree-priors"
VERSION = 1
INDEX = "priors.json"


class TreePriorError(DatasetError):
    """Priors that are missing, of another format, or do not fit their songs (one line); a
    ``DatasetError``, since priors are part of what a run reads."""


def prior_grid(performed: "Performed", velocities: np.ndarray) -> np.ndarray:
    """uint8 (T, 88): the encoding of ``performed``'s notes played at ``velocities`` (int (n,)
    1..127, one per note in ``performed.notes`` order), on ``encoding.encode``'s grid."""
    onset, end = encoding.quantize(performed.notes, performed.ticks_per_beat)
    return encoding.encode_steps(onset, end, performed.notes.pitch, velocities).velocities


def tree_grids(tree: "FeatureBaseline", notes: "Notes", ticks_per_beat: int,
               seconds: np.ndarray, styles: Sequence[str], onset: np.ndarray,
               end: np.ndarray) -> dict[str, np.ndarray]:
    """{style: uint8 (T, 88)}: the tree's velocities of ``notes`` in each style, on the grid of
    the notes' ``onset`` and ``end`` steps (int (n,); the grid the network reads, which may
    leave long silences out: ``performer.performed_grid``). seconds: float (n,) onsets."""
    return {style: encoding.encode_steps(
                onset, end, notes.pitch,
                tree.predict(notes, ticks_per_beat, style, seconds)).velocities
            for style in styles}


def piece_folds(performed: Sequence["Performed"], folds: int, seed: int) -> np.ndarray:
    """int64 (len(performed),): each performance's fold 0..folds-1. Every performance of a
    piece (same style and piece) shares one fold; within each style, pieces (in a seeded
    order, the most performed first) go to the fold that has the fewest of its performances,
    so the folds hold about equal shares of every style."""
    count: dict[tuple[str, str], int] = {}
    for p in performed:
        count[(p.style, p.piece)] = count.get((p.style, p.piece), 0) + 1
    rng = np.random.default_rng(seed)
    fold_of = {}
    for style in sorted({style for style, _ in count}):
        pieces = sorted(piece for s, piece in count if s == style)
        shuffled = [pieces[j] for j in rng.permutation(len(pieces))]
        load = np.zeros(folds, np.int64)
        for piece in sorted(shuffled, key=lambda q: -count[(style, q)]):  # stable: seeded ties
            k = int(np.argmin(load))
            fold_of[(style, piece)] = k
            load[k] += count[(style, piece)]
    return np.array([fold_of[(p.style, p.piece)] for p in performed], np.int64)


def out_of_fold_priors(train: Sequence["Performed"], others: Sequence["Performed"], *,
                       folds: int = 3, seed: int = 0, extras: Sequence[str] = (),
                       settings: Mapping[str, Any] | None = None,
                       fit: Callable[[Sequence["Performed"]], "FeatureBaseline"] | None = None,
                       log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """Prior grids {song id: uint8 (T, 88)} of every song of ``train`` and ``others``.

    A ``train`` song's grid comes from the baseline fitted on the other folds' pieces
    (``piece_folds``); an ``others`` song's from the mean of the ``folds`` baselines' velocities
    (rounded). ``fit`` trains a baseline on performances (default:
    ``FeatureBaseline.fit(performed, seed=seed, log=log, extras=extras, **settings)``:
    ``extras`` names optional column sets, ``feature_baseline.EXTRA_COLUMNS``; ``settings``
    override the trees' ``DEFAULT_SETTINGS``).
    """
    from stylenet_jax.feature_baseline import FeatureBaseline

    if folds < 2:
        raise TreePriorError(f"folds must be at least 2, got {folds}")
    fold = piece_folds(train, folds, seed)
    if len(set(fold.tolist())) < folds:
        raise TreePriorError(f"{len({(p.style, p.piece) for p in train})} training pieces "
                             f"cannot fill {folds} folds")
    fit = fit or (lambda songs: FeatureBaseline.fit(songs, seed=seed, log=log, extras=extras,
                                                    **(settings or {})))
    priors: dict[str, np.ndarray] = {}
    summed = {p.id: np.zeros(len(p.notes), np.float64) for p in others}
    for k in range(folds):
        fitted = [p for p, f in zip(train, fold) if f != k]
        log(f"fold {k + 1}/{folds}: fitting on {len(fitted)} performances")
        baseline = fit(fitted)
        for p, f in zip(train, fold):
            if f == k:
                priors[p.id] = prior_grid(p, _predict(baseline, p))
        for p in others:
            summed[p.id] += _predict(baseline, p)
    for p in others:
        priors[p.id] = prior_grid(p, np.clip(np.rint(summed[p.id] / folds), 1, 127))
    return priors


def _predict(baseline: "FeatureBaseline", p: "Performed") -> np.ndarray:
    return baseline.predict(p.notes, p.ticks_per_beat, p.style, p.seconds)


def _onset_cells(songs: Sequence["Song"], priors: Mapping[str, np.ndarray]
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{style: (the priors' velocities, the pianists'), both uint8 (cells,)} over the onset
    cells of the songs that have a prior, in song order; styles sorted."""
    cells: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for song in songs:
        grid = priors.get(song.id)
        if grid is None:
            continue
        onset = encoding.onset_channels(song.inputs) > 0
        cells.setdefault(song.style, []).append((grid[onset], song.velocities[onset]))
    return {style: (np.concatenate([g for g, _ in pairs]), np.concatenate([v for _, v in pairs]))
            for style, pairs in sorted(cells.items())}


def onset_mse(songs: Sequence["Song"], priors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The priors' mean squared error on the songs' onset cells, in the network's units
    (velocity / 127), pooled over cells as a run's onset validation loss is (``--loss=onset``,
    the shipped recipe's): ``{style: mse, ..., "all": mse}``. ``songs``: dataset songs (inputs
    uint8 (T, 176), velocities uint8 (T, 88)); ``priors``: uint8 (T, 88) grids by song id.
    Songs without a prior are left out; an empty result when none has one. A hybrid's
    validation loss below its priors' is what the network adds to the trees."""
    sums = {style: (np.sum((encoding.velocities_to_target(grid)
                            - encoding.velocities_to_target(human)) ** 2), grid.size)
            for style, (grid, human) in _onset_cells(songs, priors).items()}
    if not sums:
        return {}
    total = np.sum(list(sums.values()), axis=0)
    return {**{style: float(e / n) for style, (e, n) in sums.items()},
            "all": float(total[0] / total[1])}


def onset_scores(songs: Sequence["Song"], priors: Mapping[str, np.ndarray]
                 ) -> dict[str, dict[str, float]]:
    """The priors against the pianists on the songs' onset cells, in velocity units, by style
    and over all: ``{style: {"mae": float, "r": Pearson r, "cells": int}, ..., "all": ...}``
    (empty when no song has a prior; r is nan for a constant side). On the training songs
    these are out of fold, each song's velocities from trees that never saw its piece: a
    check of a tree's columns on every training piece, not only the few validation ones."""
    cells = _onset_cells(songs, priors)
    if cells:
        cells["all"] = tuple(np.concatenate(side) for side in zip(*cells.values()))
    scores = {}
    for style, (grid, human) in cells.items():
        grid, human = grid.astype(np.float64), human.astype(np.float64)
        varied = grid.std() > 0 and human.std() > 0
        scores[style] = {"mae": float(np.mean(np.abs(grid - human))),
                         "r": float(np.corrcoef(grid, human)[0, 1]) if varied else float("nan"),
                         "cells": int(grid.size)}
    return scores


def paired_onset_scores(songs: Sequence["Song"], priors_a: Mapping[str, np.ndarray],
                        priors_b: Mapping[str, np.ndarray], *, resamples: int = 2000,
                        seed: int = 0) -> dict[str, dict[str, float]]:
    """B's priors minus A's on the songs' onset cells, by style: ``{style:
    metrics.paired_difference}`` (``mae``, ``pearson_r``, ... with 95% bootstrap bounds, the
    pieces resampled so that a piece's performances go together; a song without a piece is
    its own). Only songs with both priors count; styles sorted. On the training songs of two
    ``tree_prior`` folders this says whether one tree's columns beat another's over every
    training piece, and by how much more than piece-to-piece luck."""
    from stylenet_jax.metrics import PieceComparison, paired_difference, piece_sums

    pairs: dict[str, tuple[list, list]] = {}
    for song in songs:
        grid_a, grid_b = priors_a.get(song.id), priors_b.get(song.id)
        if grid_a is None or grid_b is None:
            continue
        onset = encoding.onset_channels(song.inputs) > 0
        piece, human = song.piece or song.id, song.velocities[onset]
        a, b = pairs.setdefault(song.style, ([], []))
        a.append(PieceComparison(piece, human, grid_a[onset]))
        b.append(PieceComparison(piece, human, grid_b[onset]))
    out = {}
    for style, (a, b) in sorted(pairs.items()):
        pieces, sums_a = piece_sums(a)
        out[style] = paired_difference(pieces, sums_a, piece_sums(b)[1], resamples=resamples,
                                       seed=seed)
    return out


def save_priors(prior_dir: str, priors: Mapping[str, np.ndarray], info: Mapping) -> None:
    """Writes every grid to ``prior_dir/songs/<n>.npz`` and the index last (atomically), so a
    folder without ``priors.json`` is an unfinished one."""
    os.makedirs(os.path.join(prior_dir, "songs"), exist_ok=True)
    files = {}
    for n, (song_id, grid) in enumerate(sorted(priors.items())):
        rel = os.path.join("songs", f"{n}.npz")
        write_atomically(os.path.join(prior_dir, rel),
                         lambda f, g=grid: np.savez_compressed(f, velocities=g))
        files[song_id] = rel
    index = {"format": FORMAT, "version": VERSION, **info, "songs": files}
    write_text_atomically(os.path.join(prior_dir, INDEX), json.dumps(index, indent=1))


def load_prior(prior_dir: str, song_id: str, steps: int, index: Mapping | None = None
               ) -> np.ndarray:
    """uint8 (steps, 88): the prior grid of one song; raises TreePriorError (one line) if the
    folder has none for it or its length is not ``steps``. ``index``: ``read_index``'s answer
    (read here when None)."""
    index = read_index(prior_dir) if index is None else index
    rel = index["songs"].get(song_id)
    if rel is None:
        raise TreePriorError(f"{prior_dir}: no tree prior for song {song_id!r}; make the "
                             f"priors for this dataset (python -m experiments.tree_prior)")
    path = os.path.join(prior_dir, rel)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            grid = arrays["velocities"]
    except Exception as e:  # noqa: BLE001 - zipfile, zlib, numpy raise many types
        raise TreePriorError(f"{path}: unreadable prior ({type(e).__name__})") from None
    if grid.shape != (steps, encoding.NUM_KEYS):
        raise TreePriorError(f"{path}: prior of shape {grid.shape} for song {song_id!r} of "
                             f"{steps} steps; were the priors made for another build?")
    return grid


def attach_priors(songs: Sequence["Song"], prior_dir: str) -> list["Song"]:
    """``songs`` (``dataset.Song``) each with its ``prior`` from ``prior_dir`` (uint8 (T, 88));
    raises TreePriorError (one line) for a song the folder has no fitting prior for."""
    index = read_index(prior_dir)
    return [s._replace(prior=load_prior(prior_dir, s.id, s.inputs.shape[0], index))
            for s in songs]


def read_index(prior_dir: str) -> dict:
    """The parsed ``priors.json``; raises TreePriorError (one line) if absent or foreign."""
    path = os.path.join(prior_dir, INDEX)
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        raise TreePriorError(f"{prior_dir}: no {INDEX}; make it with `python -m "
                             f"experiments.tree_prior --out_dir={prior_dir}`") from None
    except ValueError:
        raise TreePriorError(f"{path}: not valid JSON") from None
    if (not isinstance(index, dict) or index.get("format") != FORMAT
            or index.get("version") != VERSION or not isinstance(index.get("songs"), dict)):
        raise TreePriorError(f"{path}: not a {FORMAT} v{VERSION} index")
    return index


def note_priors(prior_dir: str, performed: "Performed", index: Mapping | None = None
                ) -> np.ndarray:
    """int64 (n,): the tree's velocity of each of ``performed``'s n notes, read from its prior
    grid at the note's onset cell (a cell two notes share holds one velocity for both). Raises
    TreePriorError (one line) if the folder has no fitting prior for it."""
    onset, _ = encoding.quantize(performed.notes, performed.ticks_per_beat)
    steps = encoding.grid_steps(performed.notes, performed.ticks_per_beat)
    grid = load_prior(prior_dir, performed.id, steps, index)
    pitch = performed.notes.pitch.astype(np.int64) - encoding.LOWEST_KEY
    return np.clip(grid[onset, pitch].astype(np.int64), 1, 127)
