"""The optimizer: gradient clipping (per tensor as the paper's code, global, or none), then Adam
at a constant learning rate (the paper) or a warm-up / cosine schedule."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from stylenet_jax.config import OptimConfig

Array = jax.Array


def tensor_ndim(path: tuple, leaf: Array) -> int:
    """Trailing axes of a StyleNet leaf that form ONE tensor of the unstacked model: 2 for a
    matrix (``w_ih``, ``w_hh``, ``kernel``), 1 for a bias; the leading axes stack styles and
    LSTM directions, which were separate variables in the paper's TensorFlow code."""
    name = getattr(path[-1], "key", getattr(path[-1], "name", "")) if path else ""
    return min(leaf.ndim, 2 if name in ("w_ih", "w_hh", "kernel") else 1)


def clip_by_tensor_norm(max_norm: float,
                        ndim_fn: Callable[[tuple, Array], int] = tensor_ndim
                        ) -> optax.GradientTransformation:
    """Clips each tensor's L2 norm to ``max_norm`` separately (TF ``clip_by_norm`` per
    variable: ``g * max_norm / max(|g|, max_norm)``). A tensor is the trailing
    ``ndim_fn(path, leaf)`` axes of a leaf, so stacked heads/directions clip one by one.
    (optax has global-norm and block-RMS clipping, not this.)"""

    def clip(path: tuple, g: Array) -> Array:
        k = ndim_fn(path, g)
        axes = tuple(range(g.ndim - k, g.ndim))
        norm = jnp.sqrt(jnp.sum(jnp.square(g), axis=axes, keepdims=True))
        return g * (max_norm / jnp.maximum(norm, max_norm)).astype(g.dtype)

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map_with_path(clip, updates), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


FINAL_LR_FRACTION = 0.01  # where the cosine schedule ends, as a fraction of the peak


def learning_rate(config: OptimConfig) -> float | optax.Schedule:
    """``config.learning_rate`` itself (the paper: constant, no warm-up), or a schedule of
    the step: a linear warm-up from 0 over ``warmup_steps``, then constant or a cosine decay
    to ``FINAL_LR_FRACTION`` of the peak at ``lr_decay_steps`` (constant after)."""
    peak = config.learning_rate
    if config.lr_schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, config.warmup_steps, config.lr_decay_steps, peak * FINAL_LR_FRACTION)
    if config.warmup_steps:
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, config.warmup_steps), optax.constant_schedule(peak)],
            [config.warmup_steps])
    return peak


def make_optimizer(config: OptimConfig) -> optax.GradientTransformation:
    """Gradient clipping (per tensor, global, or none) then Adam, from ``config``'s
    ``clip``, ``clip_norm`` and learning rate (``learning_rate``: a number or a schedule)."""
    clip = {"per_tensor": lambda: clip_by_tensor_norm(config.clip_norm),
            "global": lambda: optax.clip_by_global_norm(config.clip_norm),
            "none": optax.identity}[config.clip]()
    return optax.chain(clip, optax.adam(learning_rate(config)))
