"""Identify the human, automatically: a small JAX classifier that tells a human's velocities
from a system's on the same notes (the paper's listening test, Malik & Ek 2017, as a model).

The paper's listeners picked the human performance out of a (human, machine) pair 53% of the
time in 10-second clips and 46% over whole pieces (50% = chance). Here a scorer
f(excerpt) -> "humanness" is trained on pairs of one set of pieces with the pairwise logistic
loss -log sigmoid(f(human) - f(system)), and scored on pairs of other pieces: a pair is right
(1) if f(human) > f(system), a tie (0.5) if |f(human) - f(system)| < 1e-6, else wrong (0).

Pipeline: ``make_pairs`` (performances -> excerpt pairs) -> ``split_pieces`` (train/test pieces
never overlap) -> ``train_and_score`` (or ``score_both_halves``). ``experiments.evaluate``
scores systems with it; ``experiments.classifier_baselines`` calibrates it on systems that
need no training.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable, Mapping, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from stylenet_jax import encoding, midi
from stylenet_jax.performances import Performed

MIN_EXCERPT_NOTES = 8
TIE_TOLERANCE = 1e-6
WIDTH = 24  # the scorer's channels: the evaluation's classifier, and what the scatter plays
FEATURE_NAMES = ("velocity", "velocity_minus_excerpt_mean", "velocity_minus_previous",
                 "pitch", "inter_onset_seconds", "log_duration_steps", "in_chord",
                 "chord_rank", "velocity_minus_chord_mean")
NUM_FEATURES = len(FEATURE_NAMES)
MAX_INTER_ONSET_SECONDS = 4.0


class Pair(NamedTuple):
    """One excerpt played two ways: the same n notes with the human's and a system's velocities.

    notes: ``midi.Notes`` (n notes, sorted by onset); seconds: float64 (n,) onsets from the
    file's start; ticks_per_beat: int; human, system: int (n,) velocities in 1..127;
    piece: the piece id (pairs of one piece are kept on one side of a train/test split).
    """

    notes: midi.Notes
    seconds: np.ndarray
    ticks_per_beat: int
    human: np.ndarray
    system: np.ndarray
    piece: str


def excerpts(seconds: np.ndarray, length_seconds: float | None = 10.0,
             hop_seconds: float | None = None,
             min_notes: int = MIN_EXCERPT_NOTES) -> list[np.ndarray]:
    """Index arrays (int64, sorted by onset) of the notes starting in consecutive windows.

    seconds: float (n,) onsets. Windows are [t0 + k hop, t0 + k hop + length) from the first
    onset t0; hop defaults to length (no overlap). Windows with fewer than ``min_notes`` notes
    are skipped. ``length_seconds`` None or infinite: one window of every note (whole piece).
    """
    seconds = np.asarray(seconds, np.float64)
    order = np.argsort(seconds, kind="stable")
    if not len(seconds):
        return []
    if length_seconds is None or not math.isfinite(length_seconds):
        return [order] if len(order) >= min_notes else []
    hop = length_seconds if hop_seconds is None else hop_seconds
    if length_seconds <= 0 or hop <= 0:
        raise ValueError("length_seconds and hop_seconds must be positive")
    sorted_seconds = seconds[order]
    first = sorted_seconds[0]
    count = int((sorted_seconds[-1] - first) // hop) + 1
    starts = first + hop * np.arange(count)
    lo = np.searchsorted(sorted_seconds, starts, side="left")
    hi = np.searchsorted(sorted_seconds, starts + length_seconds, side="left")
    return [order[a:b] for a, b in zip(lo, hi) if b - a >= min_notes]


def note_context(notes: midi.Notes, ticks_per_beat: int, seconds: np.ndarray) -> np.ndarray:
    """The velocity-free features of an excerpt's n notes (sorted by onset): float32 (n, 5),
    columns pitch, inter_onset_seconds, log_duration_steps, in_chord, chord_rank."""
    onset, end = encoding.quantize(notes, ticks_per_beat)
    pitch = notes.pitch.astype(np.float32)
    seconds = np.asarray(seconds, np.float64)
    inter_onset = np.diff(seconds, prepend=seconds[:1])  # the first note's is 0
    _, chord, chord_size = np.unique(onset, return_inverse=True, return_counts=True)
    size = chord_size[chord]
    by_chord_then_pitch = np.lexsort((pitch, chord))
    chord_first = np.cumsum(chord_size) - chord_size  # position of each chord's lowest note
    rank = np.empty(len(notes), np.float32)
    rank[by_chord_then_pitch] = np.arange(len(notes)) - chord_first[chord[by_chord_then_pitch]]
    return np.stack([
        pitch / 127.0,
        np.clip(inter_onset, 0.0, MAX_INTER_ONSET_SECONDS),
        np.log1p(end - onset) / 4.0,
        (size > 1).astype(np.float32),
        rank / np.maximum(size - 1, 1),  # 0 = the chord's lowest note, 1 = its highest
    ], axis=1).astype(np.float32)


def note_features(notes: midi.Notes, ticks_per_beat: int, seconds: np.ndarray,
                  velocities: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
    """Per-note input of one excerpt played with ``velocities`` (int (n,), 1..127).

    Returns float32 (n, NUM_FEATURES), columns ``FEATURE_NAMES`` (velocities scaled by 1/127).
    ``context``: ``note_context(notes, ...)`` if already computed (it is the same for both
    versions of a pair).
    """
    if context is None:
        context = note_context(notes, ticks_per_beat, seconds)
    v = np.asarray(velocities, np.float32) / 127.0
    if v.shape != (len(notes),):
        raise ValueError(f"need {len(notes)} velocities, got shape {v.shape}")
    onset, _ = encoding.quantize(notes, ticks_per_beat)
    _, chord, chord_size = np.unique(onset, return_inverse=True, return_counts=True)
    chord_mean = np.bincount(chord, weights=v) / chord_size
    velocity = np.stack([v, v - v.mean(), np.diff(v, prepend=v[:1]),
                         v - chord_mean[chord].astype(np.float32)], axis=1)
    return np.concatenate([velocity[:, :3], context, velocity[:, 3:]], axis=1).astype(np.float32)


def feature_mask(features: Sequence[str] | None = None) -> np.ndarray:
    """float32 (NUM_FEATURES,): 1 for each of ``features`` (None: all of FEATURE_NAMES), 0 for
    the columns the classifier then sees as zeros; ValueError for an unknown name or none."""
    if features is None:
        return np.ones(NUM_FEATURES, np.float32)
    unknown = sorted(set(features) - set(FEATURE_NAMES))
    if unknown or not features:
        raise ValueError(f"unknown classifier feature(s) {unknown}; known: "
                         f"{', '.join(FEATURE_NAMES)}" if unknown else "no features kept")
    return np.array([name in features for name in FEATURE_NAMES], np.float32)


def pair_arrays(pairs: Sequence[Pair], max_notes: int, features: Sequence[str] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pads/truncates every pair to ``max_notes`` notes (static shapes, one compile).

    Returns human, system float32 (P, max_notes, NUM_FEATURES) (zeros where padded, and in
    the columns of features not in ``features``: ``feature_mask``) and the mask bool
    (P, max_notes) of real notes. Truncation keeps an excerpt's first notes.
    """
    keep = feature_mask(features)
    human = np.zeros((len(pairs), max_notes, NUM_FEATURES), np.float32)
    system = np.zeros_like(human)
    mask = np.zeros((len(pairs), max_notes), bool)
    for i, pair in enumerate(pairs):
        context = note_context(pair.notes, pair.ticks_per_beat, pair.seconds)
        n = min(len(pair.notes), max_notes)
        for out, velocities in ((human, pair.human), (system, pair.system)):
            out[i, :n] = note_features(pair.notes, pair.ticks_per_beat, pair.seconds,
                                       velocities, context)[:n]
        mask[i, :n] = True
    return human * keep, system * keep, mask


class HumannessScorer(nn.Module):
    """f(excerpt) -> scalar: a per-note MLP, two masked 1-D convolutions over the note
    sequence, masked mean + max pooling, a linear output (about 6k parameters at width 24).

    features float32 (B, N, NUM_FEATURES), mask bool (B, N) -> float32 (B,).
    """

    width: int = WIDTH
    kernel_size: int = 5

    @nn.compact
    def __call__(self, features: jax.Array, mask: jax.Array) -> jax.Array:
        keep = mask[..., None].astype(features.dtype)
        h = nn.relu(nn.Dense(self.width)(features)) * keep
        for dilation in (1, 2):  # padding stays zero, so it never leaks into real notes
            h = nn.relu(nn.Conv(self.width, (self.kernel_size,), kernel_dilation=dilation,
                                padding="SAME")(h)) * keep
        count = jnp.maximum(keep.sum(axis=1), 1.0)
        pooled = jnp.concatenate([h.sum(axis=1) / count, h.max(axis=1)], axis=-1)  # h >= 0
        return nn.Dense(1)(pooled)[:, 0]


def _next_power_of_two(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


def bootstrap_interval(correct: np.ndarray, pieces: Sequence[str], seed: int,
                       resamples: int = 2000) -> tuple[float, float]:
    """95% interval of the pair-weighted mean of ``correct`` (float (P,)), resampling pieces."""
    names, piece_index = np.unique(np.asarray(pieces), return_inverse=True)
    sums = np.bincount(piece_index, weights=correct, minlength=len(names))
    counts = np.bincount(piece_index, minlength=len(names)).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, len(names), (resamples, len(names)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _optimizer(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


@functools.partial(jax.jit, static_argnames=("width", "learning_rate"))
def _init(key: jax.Array, features: jax.Array, mask: jax.Array, *, width: int,
          learning_rate: float):
    """Parameters and Adam state of a scorer for features (1, N, F), mask (1, N)."""
    params = HumannessScorer(width).init(key, features, mask)
    return params, _optimizer(learning_rate).init(params)


@functools.partial(jax.jit, static_argnames=("width", "learning_rate", "batch_size"))
def _train_step(params, opt_state, key: jax.Array, human: jax.Array, system: jax.Array,
                mask: jax.Array, *, width: int, learning_rate: float, batch_size: int):
    """One Adam step on ``batch_size`` pairs drawn with replacement from the (P, N, F) train
    arrays; returns params, opt_state, the next key and the batch's mean pairwise loss."""
    key, draw_key = jax.random.split(key)
    chosen = jax.random.randint(draw_key, (batch_size,), 0, human.shape[0])

    def loss_fn(params):
        both_mask = jnp.concatenate([mask[chosen], mask[chosen]])
        scores = HumannessScorer(width).apply(
            params, jnp.concatenate([human[chosen], system[chosen]]), both_mask)
        return -jnp.mean(jax.nn.log_sigmoid(scores[:batch_size] - scores[batch_size:]))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = _optimizer(learning_rate).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, key, loss


@functools.partial(jax.jit, static_argnames=("width",))
def _scores(params, features: jax.Array, mask: jax.Array, *, width: int) -> jax.Array:
    return HumannessScorer(width).apply(params, features, mask)


def train_and_score(train: Sequence[Pair], test: Sequence[Pair], *, steps: int = 400,
                    seed: int = 0, batch_size: int = 32, learning_rate: float = 3e-3,
                    width: int = WIDTH, max_notes: int | None = None,
                    max_notes_cap: int = 8192, features: Sequence[str] | None = None) -> dict:
    """Trains a ``HumannessScorer`` on ``train`` pairs, scores it on ``test`` pairs.

    Adam, ``steps`` jitted steps of ``batch_size`` train pairs drawn with replacement by an
    explicit PRNG key (seeded). ``max_notes``: notes per excerpt after padding/truncation
    (default: the longest excerpt's count rounded up to a power of two, at least 16, at most
    ``max_notes_cap``). ``features``: the only FEATURE_NAMES the scorer sees (None: all).
    Calls with equal shapes and settings share compiled programs.
    Returns accuracy (mean over test pairs, ties 0.5), pairs, pieces (test), ci95 (bootstrap
    over test pieces), train_pairs, train_pieces, final_loss (mean of the last 50 steps'
    losses), margins (float64 (P,) f(human) - f(system) per test pair), correct
    (``correct_of(margins)``), test_pieces (each test pair's piece), max_notes, params,
    seconds (wall time of the whole call).
    """
    started = time.perf_counter()
    if not train or not test:
        raise ValueError("need at least one train pair and one test pair")
    if max_notes is None:
        longest = max(len(p.notes) for p in (*train, *test))
        max_notes = min(max(_next_power_of_two(longest), 16), max_notes_cap)
    settings = dict(width=width, learning_rate=learning_rate)
    human, system, mask = (jnp.asarray(a) for a in pair_arrays(train, max_notes, features))
    init_key, key = jax.random.split(jax.random.PRNGKey(seed))
    params, opt_state = _init(init_key, human[:1], mask[:1], **settings)
    losses = []
    for _ in range(steps):
        params, opt_state, key, loss = _train_step(params, opt_state, key, human, system, mask,
                                                   batch_size=batch_size, **settings)
        losses.append(loss)
    margins = pair_margins(params, test, max_notes, width=width, batch_size=batch_size,
                           features=features)
    correct = correct_of(margins)
    test_pieces = [p.piece for p in test]
    return {
        "accuracy": float(correct.mean()),
        "pairs": len(test),
        "pieces": len(set(test_pieces)),
        "ci95": bootstrap_interval(correct, test_pieces, seed),
        "train_pairs": len(train),
        "train_pieces": len({p.piece for p in train}),
        "final_loss": float(np.mean(jax.device_get(losses[-50:]))) if losses else math.nan,
        "margins": margins,
        "correct": correct,
        "test_pieces": test_pieces,
        "max_notes": max_notes,
        "params": params,
        "seconds": time.perf_counter() - started,
    }


def accuracy_by_style(correct: np.ndarray, test_pieces: Sequence[str],
                      style_of: Mapping[str, str], seed: int) -> dict[str, dict]:
    """{style: {"accuracy", "ci95", "pairs", "pieces"}} over the scored pairs of each style's
    pieces: ``correct`` float (P,) (1, 0 or 0.5 per pair, ``correct_of``), ``test_pieces``
    each pair's piece, ``style_of`` {piece: style}; intervals by ``bootstrap_interval``."""
    correct = np.asarray(correct, np.float64)
    pieces = np.asarray(test_pieces)
    styles = np.array([style_of[piece] for piece in test_pieces])
    out = {}
    for style in sorted(set(styles.tolist())):
        chosen = styles == style
        of_style = pieces[chosen].tolist()
        out[style] = {"accuracy": float(correct[chosen].mean()),
                      "ci95": bootstrap_interval(correct[chosen], of_style, seed),
                      "pairs": len(of_style), "pieces": len(set(of_style))}
    return out


def correct_of(margins: np.ndarray) -> np.ndarray:
    """float64 (P,) per pair f(human) - f(system): 1 human higher, 0 lower, 0.5 a tie."""
    margins = np.asarray(margins, np.float64)
    return np.where(np.abs(margins) < TIE_TOLERANCE, 0.5, (margins > 0).astype(np.float64))


def score_both_halves(pairs: Sequence[Pair], *, seed: int = 0,
                      judge: Callable[..., dict] | None = None, **training) -> dict:
    """Cross-fitted ``judge(train, test, seed=seed, **training)`` (default
    ``train_and_score``; any judge whose result has ``correct``, float (P,) per test pair,
    and ``test_pieces``, such as ``statistics_judge.tree_judge``): trained on one half of the
    pieces (``split_pieces``) and scored on the other, then the other way round.
    Returns accuracy, pairs, pieces, ci95 over all pairs, ``halves`` (the two accuracies),
    ``correct`` (float64 (P,): 1, 0 or 0.5 per scored pair) and ``test_pieces`` (each scored
    pair's piece, in the same order), and ``differences`` in the same order where the judge
    gives them (``tree_judge``)."""
    judge = judge or train_and_score
    first, second = split_pieces(pairs, 0.5, seed)
    runs = [judge(train, test, seed=seed, **training)
            for train, test in ((first, second), (second, first))]
    correct = np.concatenate([result["correct"] for result in runs])
    pieces = [piece for result in runs for piece in result["test_pieces"]]
    out = {"accuracy": float(correct.mean()), "pairs": len(correct), "pieces": len(set(pieces)),
           "ci95": bootstrap_interval(correct, pieces, seed),
           "halves": [result["accuracy"] for result in runs],
           "correct": correct, "test_pieces": pieces}
    if all("differences" in result for result in runs):
        out["differences"] = np.concatenate([result["differences"] for result in runs])
    return out


def pair_margins(params, pairs: Sequence[Pair], max_notes: int, *, width: int = WIDTH,
                 batch_size: int = 32, features: Sequence[str] | None = None) -> np.ndarray:
    """f(human) - f(system) for each pair: float64 (P,), ``params`` from ``train_and_score``.

    Human and system versions are scored in separate calls of one shape (batches of
    ``batch_size``, the last padded), so identical versions score bit-identically.
    """
    human, system, mask = pair_arrays(pairs, max_notes, features)
    padded = -(-len(pairs) // batch_size) * batch_size
    pad = [(0, padded - len(pairs))] + [(0, 0)] * (human.ndim - 1)
    human, system = np.pad(human, pad), np.pad(system, pad)
    mask = np.pad(mask, pad[:2])
    out = []
    for start in range(0, padded, batch_size):
        rows = slice(start, start + batch_size)
        human_scores = _scores(params, human[rows], mask[rows], width=width)
        system_scores = _scores(params, system[rows], mask[rows], width=width)
        out.append(np.asarray(human_scores, np.float64) - np.asarray(system_scores, np.float64))
    return np.concatenate(out)[:len(pairs)]


def make_pairs(performed: Sequence[Performed], system_velocities: Sequence[np.ndarray],
               length_seconds: float | None = 10.0, hop_seconds: float | None = None,
               min_notes: int = MIN_EXCERPT_NOTES) -> list[Pair]:
    """One Pair per excerpt window (see ``excerpts``) of every performance.

    performed: ``performances.Performed`` (the human's velocities are ``p.notes.velocity``);
    system_velocities: same order, int (n,) velocities 1..127 for each performance's n notes.
    ``length_seconds`` None: one excerpt per performance (the whole piece).
    """
    if len(performed) != len(system_velocities):
        raise ValueError(f"{len(performed)} performances but {len(system_velocities)} "
                         "system velocity arrays")
    pairs = []
    for perf, system in zip(performed, system_velocities):
        system = np.asarray(system)
        if system.shape != (len(perf.notes),):
            raise ValueError(f"{perf.id}: need {len(perf.notes)} system velocities, "
                             f"got shape {system.shape}")
        for idx in excerpts(perf.seconds, length_seconds, hop_seconds, min_notes):
            notes = perf.notes.select(idx)
            pairs.append(Pair(notes, perf.seconds[idx], perf.ticks_per_beat,
                              notes.velocity.astype(np.int64), system[idx].astype(np.int64),
                              perf.piece))
    return pairs


def split_pieces(pairs: Sequence[Pair], test_fraction: float = 0.5,
                 seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """(train, test) pairs, grouped by piece: a piece's pairs are all on one side.

    round(test_fraction x pieces) pieces, at least one and leaving at least one, are drawn
    for test by a seeded permutation of the sorted piece ids.
    """
    pieces = sorted({p.piece for p in pairs})
    if len(pieces) < 2:
        raise ValueError(f"need at least 2 pieces to split, got {len(pieces)}")
    count = min(max(round(test_fraction * len(pieces)), 1), len(pieces) - 1)
    chosen = np.random.default_rng(seed).permutation(len(pieces))[:count]
    test_pieces = {pieces[i] for i in chosen}
    return ([p for p in pairs if p.piece not in test_pieces],
            [p for p in pairs if p.piece in test_pieces])
