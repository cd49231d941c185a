"""The jitted steps of training: ``init_state``, ``train_step`` and ``eval_step``.

Each is ONE module-level ``jax.jit`` whose configs are static arguments (frozen, hashable
dataclasses), so JAX's own cache serves every run of a process that shares a config (a
resumed run, a sweep, the tests), and batch shapes never change within a run, so a run
compiles each once. ``TRACES`` counts traces per (step name, static configs) for the
"compiled once" check.

* A batch holds ONE style (see ``batching``). The steps select that style's head out of
  the stacked head parameters (``model.select_heads`` with a traced index: one program for all
  styles) and run a one-head StyleNet, so the loss is the paper's MSE of each example's OWN
  head at 1/S of the head compute. The other heads get neither a gradient nor an optimizer
  update (``where_heads``), as TF1 skips variables without gradients; Adam's step count is
  shared, as TF1's ``beta_power`` is. With ``mixed_styles`` (the "mixed" layout) a batch
  holds several styles: every head runs and each row takes its own; the heads of styles
  absent from the batch are left alone in the same way.
* Dropout keys: ``fold_in(state.key, state.step)``, so a resumed run replays the same keys.
* Metrics accumulate on device (``zero_metrics``); the host reads them with ``summarize``.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from stylenet_jax import batching
from stylenet_jax.config import ModelConfig, OptimConfig
from stylenet_jax.encoding import onset_channels
from stylenet_jax.loss import level_error, masked_error, masked_mse, spread_gap
from stylenet_jax.model import (StyleNet, dummy_priors, head_config, is_head_param, reset_carry,
                                select_heads)
from stylenet_jax.optim import make_optimizer

Array = jax.Array
TRACES: collections.Counter = collections.Counter()  # (step name, *static configs) -> traces


def _train_key(model_config: ModelConfig, optim: OptimConfig, debug_nan_step: int = -1,
               mixed_styles: bool = False) -> tuple:
    """``train_step``'s key in ``TRACES``: its static arguments."""
    return "train_step", model_config, optim, debug_nan_step, mixed_styles


def train_traces(model_config: ModelConfig, optim: OptimConfig, debug_nan_step: int = -1,
                 mixed_styles: bool = False) -> int:
    """How many times this process traced ``train_step`` for these static arguments."""
    return TRACES[_train_key(model_config, optim, debug_nan_step, mixed_styles)]


class TrainState(NamedTuple):
    """step: int32 (); params, opt_state: pytrees; key: uint32 (2,) base PRNG key."""

    step: Array
    params: Any
    opt_state: Any
    key: Array


def init_params(model_config: ModelConfig, key: Array) -> Any:
    """StyleNet parameters from ``key`` (uint32 (2,) or a typed key); traceable."""
    dummy = jnp.zeros((1, 1, model_config.input_size), jnp.float32)
    return StyleNet(model_config).init(key, dummy, jnp.ones((1,), jnp.int32), train=False,
                                       priors=dummy_priors(model_config))["params"]


@functools.partial(jax.jit, static_argnames=("model_config", "optim"))
def init_state(seed_key: Array, *, model_config: ModelConfig, optim: OptimConfig) -> TrainState:
    """A fresh run from ``seed_key`` (uint32 (2,), ``PRNGKey(seed)``): params from
    ``split(key)[0]``, optimizer state, step 0 and the run's base key ``split(key)[1]``."""
    init_key, key = jax.random.split(seed_key)
    params = init_params(model_config, init_key)
    return TrainState(jnp.zeros((), jnp.int32), params, make_optimizer(optim).init(params), key)


def where_heads(present: Array, new: Any, old: Any) -> Any:
    """``new`` where ``present`` (S,) bool, else ``old``, on every ``heads`` leaf (S, ...) of
    a params-shaped tree (also optimizer moments); other leaves come from ``new``. A shared
    head (leading axis 1) takes ``new`` when any style is present."""
    def pick(path, a, b):
        if not is_head_param(path):
            return a
        here = present if a.shape[0] == present.shape[0] else present.any(keepdims=True)
        return jnp.where(here.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # shared: any
    return jax.tree_util.tree_map_with_path(pick, new, old)


def zero_metrics(num_styles: int) -> dict[str, Array]:
    """Device accumulators: per style (S,) float32 ``se`` (squared error), ``cells``,
    ``steps`` (real time steps), ``batches``, and (evaluation only) ``onset_pred`` /
    ``onset_target`` (summed predicted / true velocity / 127 on onset cells) and
    ``onset_cells``; ``grad_norm`` () summed; ``nonfinite`` () bool."""
    z = lambda: jnp.zeros((num_styles,), jnp.float32)  # noqa: E731 - distinct buffers (donated)
    return {"se": z(), "cells": z(), "steps": z(), "batches": z(), "onset_pred": z(),
            "onset_target": z(), "onset_cells": z(),
            "grad_norm": jnp.zeros((), jnp.float32), "nonfinite": jnp.zeros((), bool)}


def styles_present(styles: Array, lengths: Array, num_styles: int) -> Array:
    """bool (S,): the styles of the batch's real rows (``styles``, ``lengths`` (N,))."""
    return jnp.zeros((num_styles,), bool).at[styles].max(lengths > 0)


def _accumulate(metrics, styles, se, cells, lengths, grad_norm, loss, onset=None):
    """``metrics`` plus one batch whose rows have ``styles`` (N,) int32: per-row ``se`` and
    ``cells`` (N,) summed into each row's style; a batch counted once per style it holds
    (padding rows count for their style only in a batch of one style); ``onset``: (predicted,
    true, cells) sums on onset cells of a one-style batch, or None to leave those as they
    are."""
    num_styles = metrics["se"].shape[0]
    rows = jax.nn.one_hot(styles, num_styles, dtype=jnp.float32)  # (N, S)
    first = rows[0]
    batches = jnp.maximum(styles_present(styles, lengths, num_styles).astype(jnp.float32),
                          first * (lengths.sum() == 0))
    out = {"se": metrics["se"] + se @ rows, "cells": metrics["cells"] + cells @ rows,
           "steps": metrics["steps"] + lengths.astype(jnp.float32) @ rows,
           "batches": metrics["batches"] + batches,
           "grad_norm": metrics["grad_norm"] + grad_norm,
           "nonfinite": metrics["nonfinite"] | ~jnp.isfinite(loss) | ~jnp.isfinite(grad_norm)}
    for name, value in zip(("onset_pred", "onset_target", "onset_cells"), onset or (0, 0, 0)):
        out[name] = metrics[name] + first * value
    return out


def _own_head(params: Any, model_config: ModelConfig, batch: batching.Batch, carry: Any,
              **apply_kw) -> tuple[Array, Any]:
    """Velocities (1, N, T, 88) of the batch's own style head, and the new one-head carry."""
    head_params = select_heads(params, batch.styles[:1])
    return StyleNet(head_config(model_config)).apply(
        {"params": head_params}, batch.inputs, batch.lengths, carry=carry,
        seconds_per_beat=batch.seconds_per_beat, priors=batch.priors, **apply_kw)


@functools.partial(jax.jit, static_argnames=("model_config", "optim", "debug_nan_step",
                                             "mixed_styles"), donate_argnums=(0, 1))
def train_step(state: TrainState, metrics: dict[str, Array], batch: batching.Batch, carry: Any,
               *, model_config: ModelConfig, optim: OptimConfig, debug_nan_step: int = -1,
               mixed_styles: bool = False) -> tuple[TrainState, dict[str, Array], Any]:
    """One optimizer step on ``batch``; state and metrics are donated.

    A batch of one style runs that style's head only (the paper). With ``mixed_styles`` the
    batch's rows may be of several styles: every head runs on every row and each row's loss
    takes its own head's output (``masked_error``'s per-row heads), so each head's gradient is
    that of its own rows. ``carry``: None (independent windows) or the one-head carry of the
    batch's style (``initial_carry(head_config(c), N)``), reset on ``batch.reset`` rows; no
    gradient flows into it. ``optim.spread_weight`` > 0 adds that times ``spread_gap`` (over
    ``optim.spread_of``) to the loss the gradient follows, and ``optim.level_weight`` > 0
    that times ``level_error`` (the metrics stay the MSE);
    ``optim.error="absolute"`` makes the loss and the training metrics absolute errors.
    ``debug_nan_step`` >= 0 poisons that step's loss with NaN (for tests). Returns (state,
    metrics, new carry or None)."""
    TRACES[_train_key(model_config, optim, debug_nan_step, mixed_styles)] += 1
    tx = make_optimizer(optim)
    if carry is not None:
        carry = reset_carry(jax.lax.stop_gradient(carry), batch.reset)
    key = jax.random.fold_in(state.key, state.step)

    def loss_fn(params):
        if mixed_styles:  # (S, N, T, 88): each row then picks its own head
            vel, new_carry = StyleNet(model_config).apply(
                {"params": params}, batch.inputs, batch.lengths, train=True,
                seconds_per_beat=batch.seconds_per_beat, priors=batch.priors,
                rngs={"dropout": key})
            heads = batch.styles
        else:
            vel, new_carry = _own_head(params, model_config, batch, carry, train=True,
                                       rngs={"dropout": key})
            heads = jnp.zeros_like(batch.styles)
        value, se, cells = masked_error(vel, batch.targets, batch.lengths, heads,
                                        batch.inputs, optim.loss, optim.error)
        if optim.spread_weight:  # static: off, the step is the paper's
            value = value + optim.spread_weight * spread_gap(
                vel, batch.targets, batch.lengths, heads, batch.inputs, optim.loss,
                optim.spread_of)
        if optim.level_weight:  # static: off, the step is the paper's
            value = value + optim.level_weight * level_error(
                vel, batch.targets, batch.lengths, heads, batch.inputs, optim.loss,
                optim.error)
        return value, (se, cells, new_carry)

    (value, (se, cells, new_carry)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    if debug_nan_step >= 0:
        poison = jnp.where(state.step == debug_nan_step, jnp.nan, 1.0)
        value, grads = value * poison, jax.tree.map(lambda g: g * poison, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    present = (styles_present(batch.styles, batch.lengths, model_config.num_styles)
               if mixed_styles else jnp.arange(model_config.num_styles) == batch.styles[0])
    params = where_heads(present, params, state.params)
    opt_state = where_heads(present, opt_state, state.opt_state)
    metrics = _accumulate(metrics, batch.styles, se, cells, batch.lengths,
                          optax.tree.norm(grads), value)
    new_carry = None if carry is None else new_carry
    return TrainState(state.step + 1, params, opt_state, state.key), metrics, new_carry


@functools.partial(jax.jit, static_argnames=("model_config", "loss"), donate_argnums=(1,))
def eval_step(params: Any, metrics: dict[str, Array], batch: batching.Batch, carry: Any, *,
              model_config: ModelConfig, loss: str) -> tuple[dict[str, Array], Any]:
    """Deterministic forward of the batch's own head; squared errors (``loss`` cells) and
    onset-velocity sums accumulated into ``metrics`` (donated). Returns (metrics, carry)."""
    TRACES["eval_step", model_config, loss] += 1
    if carry is not None:
        carry = reset_carry(carry, batch.reset)
    vel, new_carry = _own_head(params, model_config, batch, carry, train=False)
    value, se, cells = masked_mse(vel, batch.targets, batch.lengths,
                                  jnp.zeros_like(batch.styles), batch.inputs, loss)
    real = jnp.arange(vel.shape[2])[None, :, None] < batch.lengths[:, None, None]
    onset = ((onset_channels(batch.inputs) > 0) & real).astype(jnp.float32)
    sums = ((vel[0] * onset).sum(), (batch.targets * onset).sum(), onset.sum())
    metrics = _accumulate(metrics, batch.styles, se, cells, batch.lengths, jnp.zeros(()),
                          value, sums)
    return metrics, (None if carry is None else new_carry)


def summarize(metrics: dict[str, Any], styles: Sequence[str], prefix: str) -> dict[str, float]:
    """Host-side floats from device accumulators: ``{prefix}loss`` (cell-weighted MSE),
    ``{prefix}loss/<style>``, ``{prefix}steps`` (real time steps), and where onsets were
    counted ``{prefix}mean_velocity`` / ``{prefix}mean_velocity_target`` (MIDI units)."""
    m = jax.device_get(metrics)
    out = {f"{prefix}loss": float(m["se"].sum() / max(m["cells"].sum(), 1.0)),
           f"{prefix}steps": int(m["steps"].sum())}
    for i, s in enumerate(styles):
        if m["batches"][i]:
            out[f"{prefix}loss/{s}"] = float(m["se"][i] / max(m["cells"][i], 1.0))
    if m["onset_cells"].sum() > 0:
        out[f"{prefix}mean_velocity"] = float(127 * m["onset_pred"].sum() / m["onset_cells"].sum())
        out[f"{prefix}mean_velocity_target"] = float(127 * m["onset_target"].sum()
                                                     / m["onset_cells"].sum())
    return out
