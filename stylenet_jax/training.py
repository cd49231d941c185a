"""Training StyleNet: the config, jitted train/eval steps and the epoch loop.

The loss is in ``loss``, the optimizer in ``optim``, the metric log in ``metrics_writer`` and
the device feed in ``input_pipeline``.

``train_and_evaluate(config, workdir)`` runs (or resumes) a whole run. Design:

* Every batch holds ONE style (see ``batching``). The train and eval steps slice that style's
  head out of the stacked head parameters (``select_head``, a dynamic index: one compiled
  program for all styles) and run a one-head StyleNet, so the loss is the paper's MSE of each
  example's OWN head at 1/S of the head compute. The other heads get neither a gradient nor
  an optimizer update (``where_heads``), as TF1 skips variables without gradients; Adam's step
  count is shared, as TF1's ``beta_power`` is.
* One ``jax.jit`` train step with donated state and metrics; batch shapes never change, so it
  compiles once per run (``CountingJit.compiles``). Metrics accumulate on device; the host reads
  them every ``log_every_steps`` steps and at epoch ends only.
* Dropout keys: ``fold_in(state.key, state.step)``; data order: ``batching.epoch_rng(seed,
  epoch)``. Checkpoints are taken at epoch ends only, so a resumed run replays the same keys and
  batches and ends with bit-identical parameters on CPU.
* A non-finite loss or gradient norm stops the run (``NonFiniteLossError``) before anything
  is saved, so the newest checkpoint is the last good one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from stylenet_jax import batching, checkpoints, dataset, snapshot
from stylenet_jax.encoding import onset_channels
from stylenet_jax.input_pipeline import prefetch_to_device
from stylenet_jax.loss import LOSSES, masked_mse
from stylenet_jax.metrics_writer import MetricsWriter
from stylenet_jax.optim import CLIPS, make_optimizer
from stylenet_jax.model import (SPEED_ONLY_FIELDS, ModelConfig, StyleNet, initial_carry,
                                is_head_param, reset_carry)

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides its workdir (defaults: the paper's final setup)."""

    # Model (see ModelConfig).
    hidden_size: int = 176
    num_layers: int = 3
    bidirectional: bool = True
    use_interpretation_layer: bool = True
    keep_prob: float = 0.8
    unroll: int = 1
    precision: str | None = None
    recurrence: str = "custom_vjp"
    matmul_dtype: str = "float32"
    # Optimisation.
    learning_rate: float = 1e-3
    clip: str = "per_tensor"
    clip_norm: float = 10.0
    loss: str = "full"
    # Data.
    data_dir: str = ""
    window: int = batching.WINDOW
    songs_per_batch: int = batching.SONGS_PER_BATCH
    windows_per_batch: int = batching.WINDOWS_PER_BATCH
    carry_state: bool = False
    pack_windows: bool = False
    # Schedule and bookkeeping.
    num_epochs: int = 160
    seed: int = 0
    eval_every_epochs: int = 1
    checkpoint_every_epochs: int = 1
    keep_checkpoints: int = 3
    snapshot_every_epochs: int = 10
    log_every_steps: int = 50
    progress: bool = True
    debug_nan_step: int = -1

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.clip not in CLIPS:
            raise ValueError(f"clip must be one of {CLIPS}, got {self.clip!r}")
        if self.carry_state and self.pack_windows:
            raise ValueError("carry_state and pack_windows exclude each other (a carried state "
                             "needs each row to be one song)")
        for name in ("window", "songs_per_batch", "windows_per_batch", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def layout(self) -> str:
        if self.carry_state:
            return "carry"
        return "packed" if self.pack_windows else "independent"

    def model_config(self, num_styles: int) -> ModelConfig:
        return ModelConfig(num_styles=num_styles, hidden_size=self.hidden_size,
                           num_layers=self.num_layers, bidirectional=self.bidirectional,
                           use_interpretation_layer=self.use_interpretation_layer,
                           keep_prob=self.keep_prob, unroll=self.unroll,
                           precision=self.precision, recurrence=self.recurrence,
                           matmul_dtype=self.matmul_dtype)


class NonFiniteLossError(FloatingPointError):
    """The loss or gradient norm became NaN or infinite; the run stopped without saving."""


# ----------------------------------------------------------------------------- state, heads


class TrainState(NamedTuple):
    """step: int32 (); params, opt_state: pytrees; key: uint32 (2,) base PRNG key."""

    step: Array
    params: Any
    opt_state: Any
    key: Array


def init_state(model_config: ModelConfig, tx: optax.GradientTransformation,
               seed: int) -> TrainState:
    """Fresh parameters and optimizer state from ``seed``."""
    return make_init(model_config, tx)(jax.random.PRNGKey(seed))


def init_params(model_config: ModelConfig, key: Array) -> Any:
    """StyleNet parameters from ``key`` (uint32 (2,) or a typed key); traceable."""
    dummy = jnp.zeros((1, 1, model_config.input_size), jnp.float32)
    return StyleNet(model_config).init(key, dummy, jnp.ones((1,), jnp.int32),
                                       train=False)["params"]


def make_init(model_config: ModelConfig, tx: optax.GradientTransformation) -> Callable:
    """Jitted ``init(key uint32 (2,)) -> TrainState``: params from ``split(key)[0]``,
    optimizer state, step 0 and the run's base key ``split(key)[1]``; one program."""

    @jax.jit
    def init(seed_key: Array) -> TrainState:
        init_key, key = jax.random.split(seed_key)
        params = init_params(model_config, init_key)
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), key)

    return init


def select_head(params: Any, style: Array) -> Any:
    """Params of a one-head model: every ``heads`` leaf (S, ...) -> (1, ...) at ``style``."""
    return jax.tree_util.tree_map_with_path(
        lambda p, a: jax.lax.dynamic_slice_in_dim(a, style, 1, 0) if is_head_param(p) else a, params)


def where_heads(present: Array, new: Any, old: Any) -> Any:
    """``new`` where ``present`` (S,) bool, else ``old``, on every ``heads`` leaf (S, ...) of
    a params-shaped tree (also optimizer moments); other leaves come from ``new``."""
    def pick(path, a, b):
        if not is_head_param(path):
            return a
        return jnp.where(present.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
    return jax.tree_util.tree_map_with_path(pick, new, old)


# ----------------------------------------------------------------------------- steps


def zero_metrics(num_styles: int) -> dict[str, Array]:
    """Device accumulators: per style (S,) float32 ``se`` (squared error), ``cells``,
    ``steps`` (real time steps), ``batches``, and (evaluation only) ``onset_pred`` /
    ``onset_target`` (summed predicted / true velocity / 127 on onset cells) and
    ``onset_cells``; ``grad_norm`` () summed; ``nonfinite`` () bool."""
    z = lambda: jnp.zeros((num_styles,), jnp.float32)  # noqa: E731 - distinct buffers (donated)
    return {"se": z(), "cells": z(), "steps": z(), "batches": z(), "onset_pred": z(),
            "onset_target": z(), "onset_cells": z(),
            "grad_norm": jnp.zeros((), jnp.float32), "nonfinite": jnp.zeros((), bool)}


def _accumulate(metrics, style, se, cells, lengths, grad_norm, loss, onset=None):
    """``metrics`` plus one batch of ``style``; ``onset``: (predicted, true, cells) sums on
    onset cells, or None to leave those accumulators as they are."""
    one = (jnp.arange(metrics["se"].shape[0]) == style).astype(jnp.float32)
    out = {"se": metrics["se"] + one * se.sum(), "cells": metrics["cells"] + one * cells.sum(),
           "steps": metrics["steps"] + one * lengths.sum().astype(jnp.float32),
           "batches": metrics["batches"] + one, "grad_norm": metrics["grad_norm"] + grad_norm,
           "nonfinite": metrics["nonfinite"] | ~jnp.isfinite(loss) | ~jnp.isfinite(grad_norm)}
    for name, value in zip(("onset_pred", "onset_target", "onset_cells"), onset or (0, 0, 0)):
        out[name] = metrics[name] + one * value
    return out


class CountingJit:
    """``jax.jit(fn, **kw)`` that counts its compiled variants (``compiles``): retraces, and
    also recompiles for the same shapes but another placement (e.g. committed vs not)."""

    def __init__(self, fn: Callable, **jit_kwargs):
        self.traces = 0

        def traced(*args):
            self.traces += 1
            return fn(*args)

        self._jitted = jax.jit(traced, **jit_kwargs)

    @property
    def compiles(self) -> int:
        size = getattr(self._jitted, "_cache_size", None)  # private; fall back to traces
        return max(self.traces, size()) if size is not None else self.traces

    def __call__(self, *args):
        return self._jitted(*args)


def head_config(model_config: ModelConfig) -> ModelConfig:
    """The one-head model the steps run (parameters: ``select_head`` of the full ones)."""
    return dataclasses.replace(model_config, num_styles=1)


def make_train_step(model_config: ModelConfig, tx: optax.GradientTransformation, *,
                    loss: str = "full", debug_nan_step: int = -1) -> CountingJit:
    """``step(state, metrics, batch, carry) -> (state, metrics, carry)``, jitted, state and
    metrics donated. ``batch``: a single-style ``batching.Batch``; ``carry``: None
    (independent windows) or the one-head carry of that style (``initial_carry(
    head_config(c), N)``), reset on ``batch.reset`` rows; no gradient flows into it.
    ``debug_nan_step`` >= 0 poisons that step's loss with NaN (for tests)."""
    model = StyleNet(head_config(model_config))
    num_styles = model_config.num_styles

    def step(state: TrainState, metrics, batch: batching.Batch, carry):
        style = batch.styles[0]
        if carry is not None:
            carry = reset_carry(jax.lax.stop_gradient(carry), batch.reset)
        key = jax.random.fold_in(state.key, state.step)

        def loss_fn(params):
            vel, new_carry = model.apply({"params": select_head(params, style)}, batch.inputs,
                                         batch.lengths, train=True, carry=carry,
                                         rngs={"dropout": key})
            value, se, cells = masked_mse(vel, batch.targets, batch.lengths,
                                          jnp.zeros_like(batch.styles), batch.inputs, loss)
            return value, (se, cells, new_carry)

        (value, (se, cells, new_carry)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params)
        if debug_nan_step >= 0:
            poison = jnp.where(state.step == debug_nan_step, jnp.nan, 1.0)
            value, grads = value * poison, jax.tree.map(lambda g: g * poison, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        present = jnp.arange(num_styles) == style
        params = where_heads(present, params, state.params)
        opt_state = where_heads(present, opt_state, state.opt_state)
        metrics = _accumulate(metrics, style, se, cells, batch.lengths,
                              optax.tree.norm(grads), value)
        new_carry = None if carry is None else new_carry
        return TrainState(state.step + 1, params, opt_state, state.key), metrics, new_carry

    return CountingJit(step, donate_argnums=(0, 1))


def make_eval_step(model_config: ModelConfig, *, loss: str = "full") -> CountingJit:
    """``step(params, metrics, batch, carry) -> (metrics, carry)``: deterministic forward of
    the batch's own head, squared errors accumulated into ``metrics``."""
    model = StyleNet(head_config(model_config))

    def step(params, metrics, batch: batching.Batch, carry):
        style = batch.styles[0]
        if carry is not None:
            carry = reset_carry(carry, batch.reset)
        vel, new_carry = model.apply({"params": select_head(params, style)}, batch.inputs,
                                     batch.lengths, train=False, carry=carry)
        value, se, cells = masked_mse(vel, batch.targets, batch.lengths,
                                      jnp.zeros_like(batch.styles), batch.inputs, loss)
        real = jnp.arange(vel.shape[2])[None, :, None] < batch.lengths[:, None, None]
        onset = ((onset_channels(batch.inputs) > 0) & real).astype(jnp.float32)
        sums = ((vel[0] * onset).sum(), (batch.targets * onset).sum(), onset.sum())
        metrics = _accumulate(metrics, style, se, cells, batch.lengths, jnp.zeros(()), value,
                              sums)
        return metrics, (None if carry is None else new_carry)

    return CountingJit(step, donate_argnums=(1,))


def summarize(metrics: dict[str, Any], styles: Sequence[str], prefix: str) -> dict[str, float]:
    """Host-side floats from device accumulators: ``{prefix}loss`` (cell-weighted MSE),
    ``{prefix}loss/<style>``, ``{prefix}steps`` (real time steps)."""
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


COLLAPSE_RATIO = 0.3  # predicted / true mean onset velocity below which a model "plays silence"


def collapse_warning(record: dict) -> str | None:
    """A warning if an evaluation record's predicted mean onset velocity is below
    ``COLLAPSE_RATIO`` of the pianists' (the whole-matrix loss's near-silent plateau)."""
    predicted, target = record.get("val_mean_velocity"), record.get("val_mean_velocity_target")
    if predicted is None or not target or predicted >= COLLAPSE_RATIO * target:
        return None
    return (f"the model plays notes at mean velocity {predicted:.1f} where the pianists play "
            f"{target:.1f}: its predictions collapse toward silence (the whole-matrix loss, "
            f"--loss=full, sits on this plateau for tens of epochs); stylize would write "
            f"near-silent notes. For a model that plays, train with --loss=onset")


# ----------------------------------------------------------------------------- the run


class RunResult(NamedTuple):
    """What ``train_and_evaluate`` ends with: the final state, completed epochs, the model
    config and style names, how often the train step was compiled (in this process, for
    this model and optimizer: see ``programs``), and the metric records of this run."""

    state: TrainState
    epoch: int
    model_config: ModelConfig
    styles: list[str]
    train_compiles: int
    records: list[dict]


def _due(epoch: int, every: int, last: bool) -> bool:
    return last or (every > 0 and epoch % every == 0)


def _carries(config: TrainConfig, model_config: ModelConfig) -> dict[int, Any] | None:
    if not config.carry_state:
        return None
    n = batching.batch_shape("carry", config.window, config.songs_per_batch)[0]
    return {s: initial_carry(head_config(model_config), n)
            for s in range(model_config.num_styles)}


def _batches(config: TrainConfig, songs, rng) -> Iterator[batching.Batch]:
    return batching.epoch_batches(songs, layout=config.layout,
                                  songs_per_batch=config.songs_per_batch,
                                  windows_per_batch=config.windows_per_batch, rng=rng)


def train_epoch(state: TrainState, train_step: CountingJit, songs: Sequence[batching.Windows],
                config: TrainConfig, epoch: int, model_config: ModelConfig,
                styles: Sequence[str], log: Callable[[dict], None]) -> TrainState:
    """Trains epoch ``epoch`` (0-based) on ``songs`` in the order of ``epoch_rng(seed, epoch)``.

    Every ``log_every_steps`` batches and at the end, reads the device metrics once, calls
    ``log(record)`` and raises NonFiniteLossError if a loss or gradient norm was not finite.
    """
    from tqdm.auto import tqdm

    total = batching.count_batches(songs, config.layout, config.songs_per_batch,
                                   config.windows_per_batch, batching.epoch_rng(config.seed, epoch))
    carries = _carries(config, model_config)
    metrics = zero_metrics(model_config.num_styles)
    bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{config.num_epochs}", unit="batch",
               disable=not config.progress, leave=False, dynamic_ncols=True)
    first, t0 = int(state.step), time.perf_counter()
    try:
        batches = _batches(config, songs, batching.epoch_rng(config.seed, epoch))
        for i, (style, batch) in enumerate(prefetch_to_device(batches), 1):
            carry = None if carries is None else carries[style]
            state, metrics, carry = train_step(state, metrics, batch, carry)
            if carries is not None:
                carries[style] = carry
            bar.update()
            if i % config.log_every_steps and i != total:
                continue
            record = summarize(metrics, styles, "train_")
            m = jax.device_get(metrics)
            now, step = time.perf_counter(), int(state.step)
            record = {"kind": "train", "step": step, "epoch": epoch + 1, **record,
                      "grad_norm": float(m["grad_norm"] / max(m["batches"].sum(), 1.0)),
                      "steps_per_second": record["train_steps"] / max(now - t0, 1e-9),
                      "batch_fill": record["train_steps"] / max(
                          float(m["batches"].sum()) * batch.inputs.shape[0] * config.window,
                          1.0)}
            if m["nonfinite"]:
                raise NonFiniteLossError(
                    f"non-finite loss or gradient between steps {first} and {step} (epoch "
                    f"{epoch + 1}); stopped without saving")
            log(record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                            steps_s=f"{record['steps_per_second']:.0f}")
            metrics, first, t0 = zero_metrics(model_config.num_styles), step, now
    finally:
        bar.close()
    return state


def evaluate(params: Any, eval_step: CountingJit, batches: Sequence[batching.Batch],
             config: TrainConfig, model_config: ModelConfig,
             styles: Sequence[str]) -> dict[str, float]:
    """``val_loss`` (cell-weighted MSE of each song's own head) and ``val_loss/<style>``."""
    carries = _carries(config, model_config)
    metrics = zero_metrics(model_config.num_styles)
    for batch in batches:
        style = int(batch.styles[0])
        metrics, carry = eval_step(params, metrics, batch,
                                   None if carries is None else carries[style])
        if carries is not None:
            carries[style] = carry
    return summarize(metrics, styles, "val_")


def _check_resumable(meta: dict, model_config: ModelConfig, styles: Sequence[str],
                     workdir: str) -> None:
    def maths(config: dict) -> dict:  # fields that change the model, not just its speed
        return {k: v for k, v in config.items() if k not in SPEED_ONLY_FIELDS}

    want = dataclasses.asdict(model_config)
    try:  # fills fields added since the checkpoint was written with their defaults
        have = dataclasses.asdict(ModelConfig.from_dict(meta.get("model_config", {})))
    except (TypeError, ValueError):
        have = meta.get("model_config")
    if (not isinstance(have, dict) or maths(have) != maths(want)
            or list(meta.get("styles", [])) != list(styles)):
        raise checkpoints.CheckpointError(
            f"{workdir}: its checkpoint was trained with model {meta.get('model_config')} on "
            f"styles {meta.get('styles')}, this run asks for {want} on {list(styles)}; "
            f"use the same flags or another --workdir")


class Programs(NamedTuple):
    """The jitted programs of a run (see ``make_init``, ``make_train_step``,
    ``make_eval_step``, ``snapshot.make_predict``)."""

    init: Callable
    train_step: CountingJit
    eval_step: CountingJit
    predict: Callable


def programs(model_config: ModelConfig, config: TrainConfig) -> Programs:
    """The programs for ``model_config`` and the optimisation fields of ``config``, memoised
    per process: runs that differ only in schedule, data or workdir (a resumed run, a sweep,
    tests) reuse the compiled steps instead of compiling them again."""
    return _programs(model_config, config.learning_rate, config.clip, config.clip_norm,
                     config.loss, config.debug_nan_step)


@functools.lru_cache(maxsize=4)
def _programs(model_config: ModelConfig, learning_rate: float, clip: str, clip_norm: float,
              loss: str, debug_nan_step: int) -> Programs:
    tx = make_optimizer(TrainConfig(learning_rate=learning_rate, clip=clip, clip_norm=clip_norm))
    return Programs(make_init(model_config, tx),
                    make_train_step(model_config, tx, loss=loss, debug_nan_step=debug_nan_step),
                    make_eval_step(model_config, loss=loss),
                    snapshot.make_predict(model_config))


def train_and_evaluate(config: TrainConfig, workdir: str) -> RunResult:
    """Trains on ``config.data_dir`` (a built dataset) to ``config.num_epochs`` epochs,
    resuming from ``workdir``'s newest checkpoint if there is one.

    Leaves in ``workdir``: ``checkpoints/`` (last ``keep_checkpoints``), ``best/`` (best
    validation loss), ``metrics.jsonl``, ``snapshots/epoch_XXXX.png``. Raises
    NonFiniteLossError (nothing saved after the last good epoch), CheckpointError, DatasetError.

    ``metrics.jsonl`` lines: ``{"kind": "train", "step", "epoch" (1-based), "train_loss",
    "train_loss/<style>", "train_steps" (real time steps since the last line), "grad_norm"
    (mean), "steps_per_second" (real time steps; the first line includes compilation),
    "batch_fill" (real / padded time steps)}`` every ``log_every_steps`` steps and at each
    epoch end; ``{"kind": "eval", "step", "epoch", "val_loss", "val_loss/<style>",
    "val_steps", "val_mean_velocity", "val_mean_velocity_target"}`` (mean predicted and true
    velocity on onset cells, MIDI units) on evaluation epochs. A resumed run first drops lines
    past its checkpoint.
    """
    os.makedirs(workdir, exist_ok=True)
    styles = dataset.dataset_styles(config.data_dir)
    train = batching.window_songs(dataset.load_songs(config.data_dir, "train"), styles,
                                  config.window)
    val = batching.window_songs(dataset.load_songs(config.data_dir, "validation"), styles,
                                config.window)
    if not train:
        raise dataset.DatasetError(f"{config.data_dir}: no training songs")
    model_config = config.model_config(len(styles))
    ckpts = checkpoints.RunCheckpoints(workdir, config.keep_checkpoints)
    writer = MetricsWriter(workdir)
    records: list[dict] = []

    def log(record: dict) -> None:
        records.append(record)
        writer.write(record)

    epoch, best = 0, None
    try:
        resume = ckpts.latest_step() is not None
        if resume:  # before compiling anything: a mismatch fails fast
            _check_resumable(ckpts.meta(), model_config, styles, workdir)
        progs = programs(model_config, config)
        key = jax.random.PRNGKey(config.seed)
        if resume:
            restored, meta = ckpts.restore(jax.eval_shape(progs.init, key))
            # Uncommitted like a fresh init's arrays: the same compiled step serves both.
            state = TrainState(*jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), restored))
            epoch = int(meta["epoch"])
            writer.truncate_after(int(state.step))
            best = (ckpts.best_meta() or {}).get("val_loss")
            logging.info("resumed %s at epoch %d, step %d", workdir, epoch, int(state.step))
        else:
            state = progs.init(key)
        train_step, eval_step, predict = progs.train_step, progs.eval_step, progs.predict
        val_batches = list(_batches(config, val, None))
        while epoch < config.num_epochs:
            state = train_epoch(state, train_step, train, config, epoch, model_config, styles,
                                log)
            epoch += 1
            last = epoch == config.num_epochs
            val_loss = None
            if val_batches and _due(epoch, config.eval_every_epochs, last):
                result = evaluate(state.params, eval_step, val_batches, config, model_config,
                                  styles)
                val_loss = result["val_loss"]
                if not np.isfinite(val_loss):
                    raise NonFiniteLossError(f"validation loss {val_loss} at epoch {epoch}")
                log({"kind": "eval", "step": int(state.step), "epoch": epoch, **result})
                logging.info("epoch %d: val_loss %.5f", epoch, val_loss)
                warning = collapse_warning(result)
                if warning:
                    logging.warning("epoch %d: %s", epoch, warning)
            if _due(epoch, config.checkpoint_every_epochs, last):
                is_best = val_loss is not None and (best is None or val_loss < best)
                best = val_loss if is_best else best
                meta = {"epoch": epoch, "step": int(state.step), "val_loss": val_loss,
                        "model_config": dataclasses.asdict(model_config), "styles": styles,
                        "train_config": dataclasses.asdict(config)}
                ckpts.save(int(state.step), state, meta, best=is_best)
            if config.snapshot_every_epochs > 0 and _due(epoch, config.snapshot_every_epochs,
                                                         last):
                song = (val or train)[0]
                snapshot.write_snapshot(
                    os.path.join(workdir, "snapshots", f"epoch_{epoch:04d}.png"), predict,
                    state.params, song, styles, f"epoch {epoch}")
        if train_step.compiles > 1:
            logging.warning("train step compiled %d times (expected once)", train_step.compiles)
    finally:
        writer.close()
        ckpts.close()
    return RunResult(state, epoch, model_config, styles, train_step.compiles, records)
