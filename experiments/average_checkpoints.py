r"""Average a run's checkpoints into one inference export, and score it on validation.

    python -m experiments.average_checkpoints --workdir=RUN                     # every kept one
    python -m experiments.average_checkpoints --workdir=RUN --steps=8664,8892,9120 --out=M.npz
    python -m experiments.average_checkpoints --workdir=RUN --best_for=jazz --out=J.npz

Every parameter of the written model is the mean of the chosen checkpoints' (``--steps``;
default: every checkpoint the run kept, its newest ``--keep_checkpoints`` and its best). It
then measures the average's validation loss the way training does (the run's own settings,
on the validation split of its ``--data_dir``, or of the one given here), prints it beside
each checkpoint's recorded one, and writes ``--out`` (default ``RUN/averaged.npz``), a file
``stylize --checkpoint`` and ``experiments.evaluate --model`` read like any export. Nothing is
written when a step is missing or the checkpoints are of different models.

``--best_for=STYLE`` takes, instead of ``--steps``, the one kept checkpoint at the epoch where
that style's validation loss (``val_loss/STYLE`` in the run's ``metrics.jsonl``) was lowest:
training keeps the checkpoint best for all styles together, and a style with few validation
songs can be best at another epoch. ``experiments.ensemble --model=STYLE=FILE`` then lets that
file play the style alone.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping, Sequence

from absl import app, flags

from stylenet_jax.flag_parsing import parse_flags, usage_error


def _define_flags() -> None:
    flags.DEFINE_string("workdir", None, "A training run directory (`experiments.train "
                        "--workdir`) with checkpoints/.")
    flags.DEFINE_list("steps", [], "Checkpoint steps to average (the folders in "
                      "WORKDIR/checkpoints). Empty: every checkpoint the run kept.")
    flags.DEFINE_string("out", "", "Where to write the averaged model (.npz). Empty: "
                        "WORKDIR/averaged.npz.")
    flags.DEFINE_string("data_dir", "", "Dataset whose validation split scores the average. "
                        "Empty: the run's own --data_dir.")
    flags.DEFINE_bool("validate", True, "Measure the average's validation loss.")
    flags.DEFINE_string("best_for", "", "Instead of --steps: the kept checkpoint of the epoch "
                        "with this style's lowest validation loss (val_loss/STYLE in the run's "
                        "metrics.jsonl).")


def best_step_for(curves: Mapping[int, Mapping[str, float]], epoch_of: Mapping[int, int],
                  style: str) -> int:
    """The step, among ``epoch_of``'s (kept checkpoint step -> its epoch), of the epoch whose
    ``val_loss/<style>`` in ``curves`` (``metrics_writer.read_epoch_curves``) is lowest.
    Raises CheckpointError (one line) when the run has no such loss or that epoch's checkpoint
    was not kept."""
    from stylenet_jax.checkpoints import CheckpointError

    key = f"val_loss/{style}"
    scored = {epoch: c[key] for epoch, c in curves.items() if key in c}
    if not scored:
        known = sorted({k.split("/", 1)[1] for c in curves.values() for k in c if "/" in k})
        raise CheckpointError(f"the run has no validation loss for style {style!r} (its "
                              f"styles: {', '.join(known) or 'none recorded'})")
    best = min(scored, key=scored.get)
    for step, epoch in sorted(epoch_of.items()):
        if epoch == best:
            return step
    raise CheckpointError(
        f"{style}'s lowest validation loss ({scored[best]:.5f}) is at epoch {best}, whose "
        f"checkpoint was not kept (kept: epochs {sorted(set(epoch_of.values()))}); train with "
        f"a larger --keep_checkpoints to keep every epoch")


def validation_loss(run_config: dict, data_dir: str, params) -> float:
    """The validation loss of ``params`` under a checkpoint's training config (its
    ``meta["config"]`` dict), on ``data_dir``'s validation split, as training measures it."""
    from stylenet_jax import dataset, training
    from stylenet_jax.config import Config

    config = Config.from_dict(run_config).replace(data_dir=data_dir, devices=0)
    styles = dataset.dataset_styles(data_dir)
    val = training.split_windows(config, styles, "validation")
    if not val:
        raise dataset.DatasetError(f"{data_dir}: no validation songs")
    run = training.Run.create(config, styles)
    return training.evaluate(run, params, list(run.batches(val, None)))["val_loss"]


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    from stylenet_jax import checkpoints, checkpoint_averaging, dataset
    from stylenet_jax.metrics_writer import METRICS_FILE, read_epoch_curves

    FLAGS = flags.FLAGS
    try:
        steps = [int(s) for s in FLAGS.steps]
    except ValueError:
        usage_error(f"--steps must be integers, got {FLAGS.steps}")
    if steps and FLAGS.best_for:
        usage_error("--steps and --best_for are two ways to choose; give one")
    out = FLAGS.out or os.path.join(FLAGS.workdir, "averaged.npz")
    if not os.path.isdir(os.path.join(FLAGS.workdir, checkpoints.CHECKPOINTS)):
        sys.exit(f"error: {FLAGS.workdir}: no checkpoints/ folder (not a training run?)")
    try:
        kept = checkpoints.RunCheckpoints(FLAGS.workdir, None)
        try:
            available = sorted(kept.manager.all_steps())
            if FLAGS.best_for:
                curves = read_epoch_curves(os.path.join(FLAGS.workdir, METRICS_FILE))
                epoch_of = {step: kept.meta(step).get("epoch") for step in available}
                best = best_step_for(curves, epoch_of, FLAGS.best_for)
                epoch, steps = epoch_of[best], [best]
                print(f"{FLAGS.best_for}'s lowest validation loss: epoch {epoch} (step {best}), "
                      f"{curves[epoch][f'val_loss/{FLAGS.best_for}']:.5f}")
            steps = steps or available
            missing = sorted(set(steps) - set(available))
            if missing:
                raise checkpoints.CheckpointError(
                    f"{FLAGS.workdir}: no checkpoint at step(s) {missing}; it has {available}")
            metas = {step: kept.meta(step) for step in steps}
        finally:
            kept.close()
        for step, meta in metas.items():
            recorded = meta.get("val_loss")
            print(f"step {step} (epoch {meta.get('epoch')}): validation loss "
                  f"{'-' if recorded is None else f'{recorded:.5f}'} (recorded)")
        params, config, styles = checkpoint_averaging.average_run(FLAGS.workdir, steps)
        if FLAGS.validate:
            run_config = metas[steps[-1]]["config"]
            data_dir = FLAGS.data_dir or run_config["data"]["data_dir"]
            loss = validation_loss(run_config, data_dir, params)
            print(f"mean of {len(steps)}: validation loss {loss:.5f} (measured on {data_dir})")
        path = checkpoints.export_inference(out, params, config, styles)
    except (checkpoints.CheckpointError, dataset.DatasetError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {path}")


if __name__ == "__main__":
    _define_flags()
    flags.mark_flag_as_required("workdir")
    app.run(main, flags_parser=parse_flags)
