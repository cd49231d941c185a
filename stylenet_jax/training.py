"""Training StyleNet: the epoch loop, validation, checkpoints and snapshots of a whole run.

``train_and_evaluate(config, workdir)`` runs (or resumes) a run of a ``config.Config``. The
compiled steps are in ``train_steps``, the loss in ``loss``, the optimizer in ``optim``, the
metric log in ``metrics_writer`` and the device feed in ``input_pipeline``.

* Data order: ``batching.epoch_rng(seed, epoch)``; dropout keys: ``fold_in(key, step)``.
  Checkpoints are taken at epoch ends only, so a resumed run replays the same keys and
  batches and ends with bit-identical parameters on CPU.
* Metrics accumulate on device; the host reads them every ``log_every_steps`` steps and at
  epoch ends only.
* A non-finite loss or gradient norm stops the run (``NonFiniteLossError``) before anything
  is saved, so the newest checkpoint is the last good one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from stylenet_jax import batching, checkpoints, dataset, snapshot, tree_prior
from stylenet_jax.config import SPEED_ONLY_FIELDS, Config, ModelConfig
from stylenet_jax.input_pipeline import prefetch_to_device
from stylenet_jax.metrics_writer import MetricsWriter
from stylenet_jax.model import head_config, initial_carry
from stylenet_jax.parallel import DataParallel, is_primary
from stylenet_jax.train_steps import (TrainState, eval_step, init_state, summarize, train_step,
                                      train_traces, zero_metrics)


class RunSetupError(ValueError):
    """The run cannot be laid out on this process's devices (one line)."""


class NonFiniteLossError(FloatingPointError):
    """The loss or gradient norm became NaN or infinite; the run stopped without saving."""


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
    config and style names, how many times this run compiled its train step (a program that
    an earlier run of this process compiled for the same configs counts as this run's one),
    and the metric records of this run."""

    state: TrainState
    epoch: int
    model_config: ModelConfig
    styles: list[str]
    train_compiles: int
    records: list[dict]


def _every_nth_or_last(epoch: int, every: int, last: bool) -> bool:
    """Whether a task run every ``every`` epochs (0: only after the last) runs after
    ``epoch`` (1-based): at multiples of ``every``, and always after the ``last`` epoch."""
    return last or (every > 0 and epoch % every == 0)


class Run(NamedTuple):
    """A run's fixed parts: its config (``model.num_styles`` set), styles, the steps with
    their static configs bound, and the devices it runs on (``parallel``)."""

    config: Config
    styles: list[str]
    train_step: Callable
    eval_step: Callable
    parallel: DataParallel

    @classmethod
    def create(cls, config: Config, styles: Sequence[str]) -> "Run":
        config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, num_styles=len(styles),
            tree_prior=config.model.tree_prior or bool(config.data.tree_prior_dir)))
        devices = jax.devices()
        if config.data.devices > len(devices):
            raise RunSetupError(f"--devices={config.data.devices}, but this process has "
                             f"{len(devices)}: {devices}")
        parallel = DataParallel(devices[:config.data.devices or None])
        if config.data.carry_state and config.data.songs_per_batch % parallel.num_devices:
            raise RunSetupError(f"carry_state on {parallel.num_devices} devices needs "
                             f"songs_per_batch divisible by {parallel.num_devices}")
        return cls(config, list(styles),
                   lambda *a: train_step(*a, model_config=config.model, optim=config.optim,
                                         debug_nan_step=config.schedule.debug_nan_step,
                                         mixed_styles=config.data.mixed_styles),
                   lambda *a: eval_step(*a, model_config=config.model, loss=config.optim.loss),
                   parallel)

    def zero_metrics(self) -> dict[str, jax.Array]:
        """Fresh metric accumulators, on the run's devices."""
        return self.parallel.put_replicated(zero_metrics(len(self.styles)))

    @property
    def train_traces(self) -> int:
        c = self.config
        return train_traces(c.model, c.optim, c.schedule.debug_nan_step, c.data.mixed_styles)

    def carries(self) -> dict[int, Any] | None:
        """Zero one-head carries per style (carry layout), else None."""
        data = self.config.data
        if not data.carry_state:
            return None
        n = batching.batch_shape("carry", data.window, data.songs_per_batch)[0]
        return {s: self.parallel.put_carry(initial_carry(head_config(self.config.model), n))
                for s in range(len(self.styles))}

    def batches(self, songs: Sequence[batching.Windows], rng) -> Iterator[batching.Batch]:
        """An epoch's batches in ``rng``'s order (None: manifest order for evaluation, one
        style per batch and no augmentation, whatever the layout)."""
        data = self.config.data
        shifts = (np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
                  if rng is not None and data.transpose else None)  # before rng is drawn
        layout = "independent" if rng is None and data.layout == "mixed" else data.layout
        batches = batching.epoch_batches(songs, layout=layout,
                                         songs_per_batch=data.songs_per_batch,
                                         windows_per_batch=data.windows_per_batch, rng=rng)
        return batching.transposed(batches, data.transpose, shifts) if shifts else batches


def train_epoch(run: Run, state: TrainState, songs: Sequence[batching.Windows], epoch: int,
                log: Callable[[dict], None]) -> TrainState:
    """Trains epoch ``epoch`` (0-based) on ``songs`` (those ``batching.per_piece`` keeps with
    ``data.performances_per_piece``) in the order of ``epoch_rng(seed, epoch)``.

    Every ``log_every_steps`` batches and at the end, reads the device metrics once, calls
    ``log(record)`` and raises NonFiniteLossError if a loss or gradient norm was not finite.
    """
    from tqdm.auto import tqdm

    data, schedule = run.config.data, run.config.schedule
    songs = batching.per_piece(songs, data.performances_per_piece, schedule.seed, epoch)
    rng = lambda: batching.epoch_rng(schedule.seed, epoch)  # noqa: E731
    total = batching.count_batches(songs, data.layout, data.songs_per_batch,
                                   data.windows_per_batch, rng())
    carries = run.carries()
    metrics = run.zero_metrics()
    bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{schedule.num_epochs}", unit="batch",
               disable=not schedule.progress, leave=False, dynamic_ncols=True)
    first, t0 = int(state.step), time.perf_counter()
    try:
        batches = prefetch_to_device(run.batches(songs, rng()), put=run.parallel.put_batch)
        for i, (style, batch) in enumerate(batches, 1):
            carry = None if carries is None else carries[style]
            state, metrics, carry = run.train_step(state, metrics, batch, carry)
            if carries is not None:
                carries[style] = carry
            bar.update()
            if i % schedule.log_every_steps and i != total:
                continue
            record = summarize(metrics, run.styles, "train_")
            m = jax.device_get(metrics)
            now, step = time.perf_counter(), int(state.step)
            padded = float(m["batches"].sum()) * batch.inputs.shape[0] * data.window
            record = {"kind": "train", "step": step, "epoch": epoch + 1, **record,
                      "grad_norm": float(m["grad_norm"] / max(m["batches"].sum(), 1.0)),
                      "steps_per_second": record["train_steps"] / max(now - t0, 1e-9),
                      "batch_fill": record["train_steps"] / max(padded, 1.0)}
            if m["nonfinite"]:
                raise NonFiniteLossError(
                    f"non-finite loss or gradient between steps {first} and {step} (epoch "
                    f"{epoch + 1}); stopped without saving")
            log(record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                            steps_s=f"{record['steps_per_second']:.0f}")
            metrics, first, t0 = run.zero_metrics(), step, now
    finally:
        bar.close()
    return state


def evaluate(run: Run, params: Any, batches: Sequence[batching.Batch]) -> dict[str, float]:
    """``val_loss`` (cell-weighted MSE of each song's own head), ``val_loss/<style>`` and the
    mean onset velocities (see ``train_steps.summarize``)."""
    carries = run.carries()
    metrics = run.zero_metrics()
    for batch in batches:
        style = int(batch.styles[0])
        metrics, carry = run.eval_step(params, metrics, run.parallel.put_batch(batch),
                                       None if carries is None else carries[style])
        if carries is not None:
            carries[style] = carry
    return summarize(metrics, run.styles, "val_")


def check_resumable(meta: dict, model_config: ModelConfig, styles: Sequence[str],
                    workdir: str) -> None:
    """Raises CheckpointError unless a checkpoint's ``meta`` was written by the same model
    maths (speed-only fields may differ) on the same styles."""
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


def split_windows(config: Config, styles: Sequence[str], split: str) -> list[batching.Windows]:
    """The songs of ``split`` ("train" or "validation") of ``config.data.data_dir`` cut into
    ``config.data.window``-step windows, as training reads them (and as the validation loss
    of any saved parameters must be measured). Raises DatasetError when the model hears the
    tempo (``tempo_input``) and the build predates songs having one; with
    ``data.tree_prior_dir``, every song gets its prior (``tree_prior.attach_priors``, which
    raises TreePriorError for a song without one)."""
    data_dir = config.data.data_dir
    songs = dataset.load_songs(data_dir, split)
    if config.model.tempo_input and any(s.seconds_per_beat is None for s in songs):
        raise dataset.DatasetError(
            f"{data_dir}: built before songs had a tempo, which --tempo_input needs; run its "
            f"`python -m data_prep.build` command again (same songs and split, tempos added)")
    if config.data.tree_prior_dir:
        songs = tree_prior.attach_priors(songs, config.data.tree_prior_dir)
    return batching.window_songs(songs, styles, config.data.window)


def train_and_evaluate(config: Config, workdir: str) -> RunResult:
    """Trains on ``config.data.data_dir`` (a built dataset) to ``num_epochs`` epochs,
    resuming from ``workdir``'s newest checkpoint if there is one.

    Leaves in ``workdir``: ``checkpoints/`` (the last ``keep_checkpoints`` and the best on
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
    data_dir, schedule = config.data.data_dir, config.schedule
    styles = dataset.dataset_styles(data_dir)
    train = split_windows(config, styles, "train")
    val = split_windows(config, styles, "validation")
    if not train:
        raise dataset.DatasetError(f"{data_dir}: no training songs")
    if config.optim.lr_schedule == "cosine" and not config.optim.lr_decay_steps:
        first = batching.per_piece(train, config.data.performances_per_piece, schedule.seed, 0)
        per_epoch = batching.count_batches(first, config.data.layout, config.data.songs_per_batch,
                                           config.data.windows_per_batch,
                                           batching.epoch_rng(schedule.seed, 0))
        config = config.replace(lr_decay_steps=max(schedule.num_epochs * per_epoch,
                                                   config.optim.warmup_steps + 1))
    run = Run.create(config, styles)
    model_config = run.config.model
    ckpts = checkpoints.RunCheckpoints(workdir, schedule.keep_checkpoints)
    writer = MetricsWriter(workdir) if is_primary() else None  # one process writes the files
    records: list[dict] = []

    def log(record: dict) -> None:
        records.append(record)
        if writer:
            writer.write(record)

    epoch, traces_before = 0, run.train_traces
    try:
        resume = ckpts.latest_step() is not None
        if resume:  # before compiling anything: a mismatch fails fast
            check_resumable(ckpts.meta(), model_config, styles, workdir)
        key = jax.random.PRNGKey(schedule.seed)
        init = lambda k: init_state(k, model_config=model_config, optim=config.optim)  # noqa
        if resume:
            restored, meta = ckpts.restore(run.parallel.abstract_replicated(
                jax.eval_shape(init, key)))
            # Uncommitted like a fresh init's arrays: the same compiled step serves both.
            state = TrainState(*jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), restored))
            state = run.parallel.put_replicated(state)
            epoch = int(meta["epoch"])
            if writer:
                writer.truncate_after(int(state.step))
            logging.info("resumed %s at epoch %d, step %d", workdir, epoch, int(state.step))
        else:  # lines of an attempt killed before its first checkpoint are not this run's
            if writer:
                writer.truncate_after(0)
            state = run.parallel.put_replicated(init(key))
        val_batches = list(run.batches(val, None))
        while epoch < schedule.num_epochs:
            state = train_epoch(run, state, train, epoch, log)
            epoch += 1
            last = epoch == schedule.num_epochs
            val_loss = None
            if val_batches and _every_nth_or_last(epoch, schedule.eval_every_epochs, last):
                result = evaluate(run, state.params, val_batches)
                val_loss = result["val_loss"]
                if not np.isfinite(val_loss):
                    raise NonFiniteLossError(f"validation loss {val_loss} at epoch {epoch}")
                log({"kind": "eval", "step": int(state.step), "epoch": epoch, **result})
                logging.info("epoch %d: val_loss %.5f", epoch, val_loss)
                warning = collapse_warning(result)
                if warning:
                    logging.warning("epoch %d: %s", epoch, warning)
            if _every_nth_or_last(epoch, schedule.checkpoint_every_epochs, last):
                meta = {"epoch": epoch, "step": int(state.step), "val_loss": val_loss,
                        "model_config": dataclasses.asdict(model_config), "styles": styles,
                        "config": dataclasses.asdict(run.config)}
                ckpts.save(int(state.step), state, meta, val_loss)
            if schedule.snapshot_every_epochs > 0 and is_primary() and _every_nth_or_last(
                    epoch, schedule.snapshot_every_epochs, last):
                snapshot.write_snapshot(  # host parameters: a local computation
                    os.path.join(workdir, "snapshots", f"epoch_{epoch:04d}.png"), model_config,
                    jax.device_get(state.params), (val or train)[0], styles, f"epoch {epoch}")
        compiles = run.train_traces - traces_before or min(run.train_traces, 1)
        if compiles > 1:
            logging.warning("train step compiled %d times (expected once)", compiles)
    finally:
        if writer:
            writer.close()
        ckpts.close()
    return RunResult(state, epoch, model_config, styles, compiles, records)
