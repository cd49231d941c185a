"""The training loss: the squared (or absolute) error of each row's own style head, on the
cells a loss mode counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stylenet_jax.config import BAR_STEPS, ERRORS, LOSSES, SPREAD_LEVELS
from stylenet_jax.encoding import held_channels, onset_channels

Array = jax.Array


def _own_cells(velocities: Array, targets: Array, lengths: Array, heads: Array,
               inputs: Array, mode: str) -> tuple[Array, Array]:
    """Each row's own head's prediction and the weight of each cell in the loss: float32
    (N, T, 88) each (1 where ``mode`` counts the cell on a real step, else 0)."""
    n, t = targets.shape[:2]
    pred = velocities[heads, jnp.arange(n)]  # (N, T, 88)
    weight = (jnp.arange(t)[None, :] < lengths[:, None]).astype(jnp.float32)[..., None]
    if mode == "active":
        weight = weight * (held_channels(inputs) > 0).astype(jnp.float32)
    elif mode == "onset":
        weight = weight * (onset_channels(inputs) > 0).astype(jnp.float32)
    elif mode != "full":
        raise ValueError(f"loss mode must be one of {LOSSES}, got {mode!r}")
    return pred, jnp.broadcast_to(weight, pred.shape)


def _error_of(diff: Array, error: str) -> Array:
    """Each value's error, ``error`` one of ``ERRORS``: ``diff`` squared or its absolute
    value, same shape and dtype."""
    if error not in ERRORS:
        raise ValueError(f"error must be one of {ERRORS}, got {error!r}")
    return jnp.square(diff) if error == "squared" else jnp.abs(diff)


def masked_mse(velocities: Array, targets: Array, lengths: Array, heads: Array,
               inputs: Array, mode: str = "full") -> tuple[Array, Array, Array]:
    """MSE of each row's own head, on real steps only: ``masked_error`` with squared errors
    (arguments and returns as there)."""
    return masked_error(velocities, targets, lengths, heads, inputs, mode, "squared")


def masked_error(velocities: Array, targets: Array, lengths: Array, heads: Array,
                 inputs: Array, mode: str = "full",
                 error: str = "squared") -> tuple[Array, Array, Array]:
    """Mean squared (or absolute) error of each row's own head, on real steps only.

    Args:
      velocities: float32 (S, N, T, 88), every head's prediction.
      targets: float32 (N, T, 88). lengths: int32 (N,) real steps per row.
      heads: int32 (N,) index into S of each row's own head.
      inputs: (N, T, 176) the model input; which cells of a real step count: ``"full"`` every
        cell (the paper), ``"active"`` cells where a note sounds (held channel 1),
        ``"onset"`` cells where a note starts (played-now channel 1: the only velocities that
        are written back to a MIDI file).
      error: ``"squared"`` (the paper) or ``"absolute"`` (|prediction - target|).
    Returns:
      loss: float32 () summed error / counted cells (0 if none);
      se: float32 (N,) summed error per row; cells: float32 (N,) counted cells per row.
    """
    pred, weight = _own_cells(velocities, targets, lengths, heads, inputs, mode)
    se = (_error_of(pred - targets, error) * weight).sum((1, 2))
    cells = weight.sum((1, 2))
    return se.sum() / jnp.maximum(cells.sum(), 1.0), se, cells


def _run_levels(pred: Array, targets: Array, weight: Array,
                run: int) -> tuple[Array, Array, Array]:
    """Each run of ``run`` steps from the window's start reduced to one value, its mean over
    its counted cells: float32 (N, R, 1) predictions, targets, and weights (1 for a run with
    a counted cell, else 0), R = ceil(T / run). Inputs float32 (N, T, 88) as ``_own_cells``
    returns them."""
    n, t = weight.shape[:2]

    def per_run(x: Array) -> Array:
        summed = jnp.pad(x.sum(2), ((0, 0), (0, -t % run)))
        return summed.reshape(n, -1, run).sum(2)[..., None]

    counts = per_run(weight)
    means = [per_run(x * weight) / jnp.maximum(counts, 1.0) for x in (pred, targets)]
    return means[0], means[1], (counts > 0).astype(jnp.float32)


SPREAD_EPSILON = 1e-6  # keeps the gradient of a standard deviation finite at 0


def spread_gap(velocities: Array, targets: Array, lengths: Array, heads: Array,
               inputs: Array, mode: str = "onset", level: str = "notes") -> Array:
    """How far each window's dynamic spread is from the pianist's: float32 (), the mean over
    rows with at least two counted values of (sd of the row's predictions - sd of its
    targets) squared (arguments as ``masked_mse``).

    ``level="notes"``: the values are the cells ``mode`` counts, one per note. ``"steps"``:
    each time step with a counted cell gives one value, the mean velocity of its counted
    cells (the level of a chord), so a chord voiced wider about the same mean does not count.
    ``"bars"``: the same over each run of ``BAR_STEPS`` steps from the window's start (a 4/4
    bar's length), so neither voicing nor melody against bass within a bar counts.

    An MSE-trained regressor shrinks its predictions toward their mean (its spread tends to
    its correlation with the target, about half here), which a listener hears as flat
    dynamics; this term pays for every window whose range is narrower (or wider) than the
    pianist's, whatever the notes' individual errors.
    """
    if level not in SPREAD_LEVELS:
        raise ValueError(f"spread level must be one of {SPREAD_LEVELS}, got {level!r}")
    pred, weight = _own_cells(velocities, targets, lengths, heads, inputs, mode)
    if level != "notes":
        pred, targets, weight = _run_levels(pred, targets, weight,
                                            1 if level == "steps" else BAR_STEPS)
    cells = weight.sum((1, 2))
    count = jnp.maximum(cells, 1.0)[:, None, None]

    def row_sd(x: Array) -> Array:
        mean = (x * weight).sum((1, 2), keepdims=True) / count
        variance = (jnp.square(x - mean) * weight).sum((1, 2)) / count[:, 0, 0]
        return jnp.sqrt(variance + SPREAD_EPSILON)

    counted = (cells >= 2).astype(jnp.float32)
    gap = jnp.square(row_sd(pred) - row_sd(targets)) * counted
    return gap.sum() / jnp.maximum(counted.sum(), 1.0)


def level_error(velocities: Array, targets: Array, lengths: Array, heads: Array,
                inputs: Array, mode: str = "onset", error: str = "squared") -> Array:
    """How far the predicted bar levels are from the pianist's: float32 (), the mean over
    every run of ``BAR_STEPS`` steps (from each window's start) with a counted cell of the
    squared (or absolute) difference between the run's mean prediction and its mean target
    over its counted cells (arguments as ``masked_error``).

    A note's error already holds its bar's level error, weighted by the bar's notes; this
    term counts each bar once more, whatever its notes, so the network is paid for getting
    louder and softer where the pianist does (pianists agree on 16-note levels at r
    0.78-0.79, the model follows them at 0.59-0.62) rather than for voicing within a bar.
    In the shipped recipe it did not move that r (README, "Phrase levels, by loss or by
    context").
    """
    pred, weight = _own_cells(velocities, targets, lengths, heads, inputs, mode)
    pred, targets, weight = _run_levels(pred, targets, weight, BAR_STEPS)
    return (_error_of(pred - targets, error) * weight).sum() / jnp.maximum(weight.sum(), 1.0)
