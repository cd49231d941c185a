"""A second kind of judge for "identify the human": gradient-boosted trees (scikit-learn) on
summary statistics of an excerpt's velocities, beside the neural classifier of
``human_classifier`` (the one the learned scatter trains against, so a judge it never met).

``statistics`` describes one version of an excerpt (``STATISTIC_NAMES``); ``tree_judge``
learns from the difference of the two versions' statistics in the training pairs (each pair
in both orders, so no side is favoured) and scores the test pairs as
``human_classifier.train_and_score`` does: the share picked right, ties half.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from stylenet_jax import encoding, human_classifier
from stylenet_jax.human_classifier import Pair

PHRASE_NOTES = 8  # the moving average that stands for the phrase level
MAX_EFFECT = 100.0  # ``effects`` of a difference that never varies
STATISTIC_NAMES = (
    "mean", "sd", "p5", "p25", "p50", "p75", "p95", "p95 - p5",
    "mean |step|", "sd of steps", "share of repeated velocities",
    "lag-1 correlation", "lag-2 correlation", "lag-4 correlation",
    "sd within chords", "mean |velocity - chord mean|", "share of chords led by the top note",
    "top note minus chord mean", "correlation with pitch", "correlation with duration",
    "correlation with time since the last onset", "correlation with being in a chord",
    "distinct velocities per note", "share of even velocities", "sd of the phrase level",
    "sd around the phrase level")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r in float64, 0 where either side is constant or shorter than 2 (constant
    exactly: a float32 column of equal values can have a standard deviation of 1e-7)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1])


class Layout(NamedTuple):
    """What both versions of an excerpt share (``layout``): each note's chord, int (n,) (its
    notes start on one 1/16 step); the chords' sizes, int (C,); the indices of the top notes
    of chords of two or more, int (k,); pitch, float64 (n,); ``human_classifier.note_context``,
    float32 (n, 5)."""

    chord: np.ndarray
    size: np.ndarray
    top: np.ndarray
    pitch: np.ndarray
    context: np.ndarray


def layout(pair: Pair) -> Layout:
    """The chords, top notes, pitches and note context of ``pair``'s notes."""
    onset, _ = encoding.quantize(pair.notes, pair.ticks_per_beat)
    _, chord, size = np.unique(onset, return_inverse=True, return_counts=True)
    pitch = pair.notes.pitch.astype(np.float64)
    order = np.lexsort((pitch, chord))  # by chord, then pitch: each chord's last is its top
    top = order[np.r_[chord[order][1:] != chord[order][:-1], True]]
    return Layout(chord, size, top[size[chord[top]] > 1], pitch,
                  human_classifier.note_context(pair.notes, pair.ticks_per_beat, pair.seconds))


def statistics(pair: Pair, velocity: np.ndarray, shared: Layout | None = None) -> np.ndarray:
    """float64 (len(STATISTIC_NAMES),): ``velocity`` (int or float (n,), one per note of
    ``pair.notes``, in onset order) summarised. ``shared``: ``layout(pair)`` if already
    computed (it is the same for both versions)."""
    v = np.asarray(velocity, np.float64)
    chord, size, top, pitch, context = shared if shared is not None else layout(pair)
    deviation = v - (np.bincount(chord, weights=v) / size)[chord]
    in_chord = size[chord] > 1
    loudest = np.full(len(size), -np.inf)
    np.maximum.at(loudest, chord, v)
    steps = np.diff(v)
    width = min(PHRASE_NOTES, len(v))
    phrase = np.convolve(v, np.ones(width) / width, mode="valid")
    around = v[width // 2:width // 2 + len(phrase)] - phrase
    percentiles = np.percentile(v, [5, 25, 50, 75, 95])
    out = [v.mean(), v.std(), *percentiles, percentiles[4] - percentiles[0],
           np.abs(steps).mean() if len(steps) else 0.0, steps.std() if len(steps) else 0.0,
           (steps == 0).mean() if len(steps) else 0.0,
           *[correlation(v[:-k], v[k:]) for k in (1, 2, 4)],
           deviation[in_chord].std() if in_chord.any() else 0.0,
           np.abs(deviation[in_chord]).mean() if in_chord.any() else 0.0,
           (v[top] >= loudest[chord[top]]).mean() if len(top) else 0.0,
           deviation[top].mean() if len(top) else 0.0,
           correlation(v, pitch), correlation(v, context[:, 2]),
           correlation(v, context[:, 1]), correlation(v, context[:, 3]),
           len(np.unique(v)) / len(v), (np.round(v) % 2 == 0).mean(), phrase.std(),
           around.std()]
    return np.asarray(out, np.float64)


def _differences(pairs: Sequence[Pair]) -> np.ndarray:
    """float64 (P, K): statistics of the pianist's version minus the system's, per pair."""
    rows = []
    for p in pairs:
        shared = layout(p)
        rows.append(statistics(p, p.human, shared) - statistics(p, p.system, shared))
    return np.stack(rows)


def effects(differences: np.ndarray) -> np.ndarray:
    """float64 (K,): each statistic's mean difference, pianist minus system, over the pairs
    of ``differences`` (float (P, K), ``tree_judge``'s), in units of its standard deviation
    over them: what most gives a system away, and which way (below 0: the system has more of
    it than the pianist). At most ``MAX_EFFECT`` either way, which is what a difference of
    the same nonzero value in every pair reads; no difference at all reads 0."""
    d = np.asarray(differences, np.float64)
    mean, spread = d.mean(axis=0), d.std(axis=0)
    return np.clip(mean / np.maximum(spread, np.abs(mean) / MAX_EFFECT + 1e-300),
                   -MAX_EFFECT, MAX_EFFECT)


def tree_judge(train: Sequence[Pair], test: Sequence[Pair], *, seed: int = 0,
               iterations: int = 300) -> dict:
    """Gradient-boosted trees on ``train`` pairs' statistic differences, scored on ``test``.
    Returns accuracy (ties 0.5), pairs, pieces (test), ci95 (bootstrap over test pieces),
    margins (float64 (P,) per test pair: > 0 the pianist picked, 0 a tie), correct
    (``human_classifier.correct_of(margins)``) and test_pieces (each test pair's piece), as
    ``human_classifier.train_and_score`` does, and the test pairs' differences (float64
    (P, K), ``STATISTIC_NAMES``' order, pianist minus system)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not train or not test:
        raise ValueError("need at least one train pair and one test pair")
    x = _differences(train)
    trees = HistGradientBoostingClassifier(max_iter=iterations, learning_rate=0.05,
                                           random_state=seed)
    trees.fit(np.concatenate([x, -x]), np.r_[np.ones(len(x)), np.zeros(len(x))])
    differences = _differences(test)
    margins = trees.predict_proba(differences)[:, 1] - 0.5  # > 0: the right order
    margins[~differences.any(axis=1)] = 0.0  # versions alike in every statistic: a tie
    correct = human_classifier.correct_of(margins)
    pieces = [p.piece for p in test]
    return {"accuracy": float(correct.mean()), "pairs": len(test), "pieces": len(set(pieces)),
            "ci95": human_classifier.bootstrap_interval(correct, pieces, seed),
            "margins": margins, "correct": correct, "test_pieces": pieces,
            "differences": differences}
