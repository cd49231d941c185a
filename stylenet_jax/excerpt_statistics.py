"""Statistics of excerpts played at given velocities, differentiable (JAX), for training the
learned scatter (``scatter_training``).

Two uses. ``SCORER_COLUMNS``: per-note columns the scatter's scorers may also see, whose mean
over an excerpt is one of the judges' statistics (``statistics_judge.STATISTIC_NAMES``) that
per-note features pooled by a mean and a max cannot compute. ``matched_statistics``: a dozen
of those statistics for each excerpt, the same numbers ``statistics_judge.statistics`` gives
(tested), which the network can be charged to match to the pianist's (``statistics_gap``):
the trees' judge reads them, and the remaining tells of every scatter are among them
(``experiments.judges``: classical's correlation with duration, jazz's with pitch).

Shapes: B excerpts padded to L notes in (onset, pitch) order, ``velocity`` float (B, L) /127,
``context`` float (B, L, 5) (``human_classifier.note_context``'s columns), ``groups`` int
(B, L) onset groups, ``mask`` bool (B, L) the real notes, a prefix of each row.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from stylenet_jax import learned_scatter as ls
from stylenet_jax.statistics_judge import PHRASE_NOTES  # the phrase level's moving average

SHARED_VELOCITY_WIDTH = 0.5  # velocity units: the kernel of ``velocity_sharing``'s soft count
PITCH_COLUMN, INTER_ONSET_COLUMN, LOG_DURATION_COLUMN, IN_CHORD_COLUMN, CHORD_RANK_COLUMN = range(5)
STANDARD_SCORE_FLOOR = 1e-3  # added in quadrature to an excerpt's sd (/127 units, log steps)


def excerpt_mean(values: jax.Array, keep: jax.Array) -> jax.Array:
    """float32 (B, 1): each excerpt's mean of ``values`` (B, L) over the notes ``keep``
    (float (B, L), 1 or 0) marks."""
    return (values * keep).sum(1, keepdims=True) / jnp.maximum(keep.sum(1, keepdims=True), 1.0)


def standard_scores(values: jax.Array, keep: jax.Array) -> jax.Array:
    """float32 (B, L): ``values`` (B, L) less their excerpt's mean over the notes ``keep``
    (float (B, L), 1 or 0) marks, over that sd (floored), zero where ``keep`` is 0."""
    centred = (values - excerpt_mean(values, keep)) * keep
    return centred / jnp.sqrt(excerpt_mean(centred ** 2, keep) + STANDARD_SCORE_FLOOR ** 2)


def velocity_sharing(velocity: jax.Array, mask: jax.Array) -> jax.Array:
    """float32 (B, L): one over each note's soft count of the excerpt's notes at its velocity
    (itself included; whole units), zero where ``mask`` is False. Its mean over an excerpt's
    notes is about the number of distinct velocities per note, which per-note features cannot
    count; a Gaussian kernel of ``SHARED_VELOCITY_WIDTH`` units keeps it differentiable.
    O(L^2) per excerpt."""
    keep = mask.astype(jnp.float32)
    apart = 127.0 * (velocity[:, :, None] - velocity[:, None, :]) / SHARED_VELOCITY_WIDTH
    count = (jnp.exp(-0.5 * apart ** 2) * keep[:, None, :]).sum(-1)
    return keep / jnp.maximum(count, 1.0)


def duration_coupling(velocity: jax.Array, context: jax.Array, mask: jax.Array) -> jax.Array:
    """float32 (B, L): each note's standard score of velocity times that of its log duration,
    both within the excerpt's real notes; zero where ``mask`` is False. Its mean over an
    excerpt's notes is the correlation of loudness with note length."""
    keep = mask.astype(jnp.float32)
    return (standard_scores(velocity, keep)
            * standard_scores(context[..., LOG_DURATION_COLUMN], keep))


SCORER_COLUMNS: dict[str, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]] = {
    "velocity_sharing": lambda velocity, context, mask: velocity_sharing(velocity, mask),
    "duration_coupling": duration_coupling,
}  # name -> (velocity (B, L), context (B, L, 5), mask (B, L)) -> float32 (B, L)


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """``columns`` as a tuple of distinct ``SCORER_COLUMNS`` names; raises ValueError
    otherwise."""
    if any(name not in SCORER_COLUMNS for name in columns) or len(set(columns)) != len(columns):
        raise ValueError(f"scorer columns {list(columns)}: name each of {list(SCORER_COLUMNS)} "
                         "at most once")
    return tuple(columns)


def _correlation(a: jax.Array, b: jax.Array, keep: jax.Array) -> jax.Array:
    """float32 (B,): Pearson r of ``a`` and ``b`` (B, L) over the notes ``keep`` marks; about
    0 where either is constant (the sd floor)."""
    return excerpt_mean(standard_scores(a, keep) * standard_scores(b, keep), keep)[:, 0]


def _sd(values: jax.Array, keep: jax.Array) -> jax.Array:
    """float32 (B,): the population sd of ``values`` (B, L) over the notes ``keep`` marks."""
    centred = (values - excerpt_mean(values, keep)) * keep
    return jnp.sqrt(excerpt_mean(centred ** 2, keep)[:, 0] + 1e-12)


def _phrase(velocity: jax.Array, keep: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(float32 (B, L) the mean of each run of ``PHRASE_NOTES`` notes starting at each note,
    float (B, L) 1 where that run lies within the real notes)."""
    pad = ((0, 0), (1, 0))
    sums = jnp.pad(jnp.cumsum(velocity * keep, axis=1), pad)
    ahead = jnp.minimum(jnp.arange(velocity.shape[1]) + PHRASE_NOTES, velocity.shape[1])
    level = (sums[:, ahead] - sums[:, :-1]) / PHRASE_NOTES
    whole = jnp.pad(keep, pad)[:, ahead] * (jnp.arange(velocity.shape[1]) + PHRASE_NOTES
                                            <= velocity.shape[1])
    return level, whole


MATCHED_STATISTICS = (
    "sd", "mean |step|", "lag-1 correlation", "lag-2 correlation", "sd within chords",
    "top note minus chord mean", "correlation with pitch", "correlation with duration",
    "correlation with time since the last onset", "correlation with being in a chord",
    "sd of the phrase level", "sd around the phrase level")  # statistics_judge's names


def matched_statistics(velocity: jax.Array, context: jax.Array, groups: jax.Array,
                       mask: jax.Array) -> jax.Array:
    """float32 (B, len(MATCHED_STATISTICS)): each excerpt's statistics, as
    ``statistics_judge.statistics`` computes them on its notes alone (velocity in /127 units,
    so the velocity-valued ones are /127). Excerpts need at least ``PHRASE_NOTES`` notes, as
    ``human_classifier.excerpts`` keeps."""
    keep = mask.astype(jnp.float32)
    context = context.at[:, 0, INTER_ONSET_COLUMN].set(0.0)  # the excerpt's first note
    step_keep = keep[:, 1:]
    steps = (velocity[:, 1:] - velocity[:, :-1]) * step_keep
    in_chord = keep * context[..., IN_CHORD_COLUMN]
    top = in_chord * (context[..., CHORD_RANK_COLUMN] == 1.0)
    deviation = velocity - ls.segment_mean(velocity, groups, mask)
    level, whole = _phrase(velocity, keep)
    centre = jnp.roll(velocity, -(PHRASE_NOTES // 2), axis=1)  # the note each run is about
    lag = [_correlation(velocity[:, :-k], velocity[:, k:], keep[:, k:]) for k in (1, 2)]
    return jnp.stack([
        _sd(velocity, keep),
        excerpt_mean(jnp.abs(steps), step_keep)[:, 0],
        *lag,
        jnp.sqrt(excerpt_mean(deviation ** 2, in_chord)[:, 0] + 1e-12),
        excerpt_mean(deviation, top)[:, 0],
        *[_correlation(velocity, context[..., c], keep)
          for c in (PITCH_COLUMN, LOG_DURATION_COLUMN, INTER_ONSET_COLUMN, IN_CHORD_COLUMN)],
        _sd(level, whole),
        _sd(centre - level, whole),
    ], axis=1)


def statistics_gap(drawn: jax.Array, human: jax.Array, style: jax.Array,
                   scale: jax.Array) -> jax.Array:
    """float32 (): how far a batch's drawn statistics sit from the pianist's on the same
    excerpts, style by style: the square of each statistic's mean difference over a style's
    excerpts, in units of ``scale`` (float (K,), > 0: the statistic's sd over the pianists'
    excerpts), summed over the statistics, averaged over the styles with two excerpts or more.
    ``drawn``, ``human``: float (B, K); ``style``: float (B, S) one-hot. The square is
    estimated without bias, from the products of different excerpts' differences only: the
    plain square of a batch mean would add the differences' variance over the batch size and
    charge the network for every excerpt whose statistics it cannot know, not only for an
    offset. So a systematic offset is charged whole, and differences that vary around 0 cost
    nothing on average (one batch's estimate can be below 0)."""
    difference = (drawn - human) / scale
    count = style.sum(axis=0)  # (S,)
    total = style.T @ difference  # (S, K)
    squares = style.T @ difference ** 2
    pairs = jnp.maximum(count * (count - 1.0), 1.0)[:, None]
    by_style = ((total ** 2 - squares) / pairs).sum(axis=1)  # (S,)
    present = (count > 1).astype(jnp.float32)
    return (by_style * present).sum() / jnp.maximum(present.sum(), 1.0)
