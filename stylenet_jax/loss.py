"""The training loss: MSE of each row's own style head, on the cells a loss mode counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stylenet_jax.config import LOSSES
from stylenet_jax.encoding import held_channels, onset_channels

Array = jax.Array


def masked_mse(velocities: Array, targets: Array, lengths: Array, heads: Array,
               inputs: Array, mode: str = "full") -> tuple[Array, Array, Array]:
    """MSE of each row's own head, on real steps only.

    Args:
      velocities: float32 (S, N, T, 88), every head's prediction.
      targets: float32 (N, T, 88). lengths: int32 (N,) real steps per row.
      heads: int32 (N,) index into S of each row's own head.
      inputs: (N, T, 176) the model input; which cells of a real step count: ``"full"`` every
        cell (the paper), ``"active"`` cells where a note sounds (held channel 1),
        ``"onset"`` cells where a note starts (played-now channel 1: the only velocities that
        are written back to a MIDI file).
    Returns:
      loss: float32 () summed squared error / counted cells (0 if none);
      se: float32 (N,) summed squared error per row; cells: float32 (N,) counted cells per row.
    """
    n, t = targets.shape[:2]
    pred = velocities[heads, jnp.arange(n)]  # (N, T, 88)
    weight = (jnp.arange(t)[None, :] < lengths[:, None]).astype(jnp.float32)[..., None]
    if mode == "active":
        weight = weight * (held_channels(inputs) > 0).astype(jnp.float32)
    elif mode == "onset":
        weight = weight * (onset_channels(inputs) > 0).astype(jnp.float32)
    elif mode == "full":
        weight = jnp.broadcast_to(weight, pred.shape)
    else:
        raise ValueError(f"loss mode must be one of {LOSSES}, got {mode!r}")
    se = (jnp.square(pred - targets) * weight).sum((1, 2))
    cells = weight.sum((1, 2))
    return se.sum() / jnp.maximum(cells.sum(), 1.0), se, cells
