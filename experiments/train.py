r"""Train StyleNet: ``python -m experiments.train --flagfile=experiments/configs/stylenet.flags
--workdir=DIR`` (any flag may be overridden after the flagfile).

With ``--data_dir`` it trains on a dataset built by ``python -m data_prep.build``; without, it
first writes a small generated MIDI corpus and builds it into ``DIR/data`` (reused if there).
Re-running with the same ``--workdir`` resumes from its newest checkpoint. At the end the best
(else last) parameters are exported to ``DIR/inference.npz`` (float16, no optimizer state).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Sequence

from absl import app, flags, logging

FLAGS = flags.FLAGS

# Run and data.
flags.DEFINE_string("workdir", None, "Run directory: checkpoints/, best/, metrics.jsonl, "
                    "snapshots/, inference.npz. An existing one is resumed.")
flags.DEFINE_string("data_dir", "", "A dataset built by `python -m data_prep.build`. Empty: "
                    "generate synthetic MIDI and build a small dataset in WORKDIR/data.")
flags.DEFINE_list("synthetic_styles", ["classical", "jazz"],
                  "Without --data_dir: styles of the generated corpus.")
flags.DEFINE_integer("synthetic_songs_per_style", 8, "Without --data_dir: songs per style.")
flags.DEFINE_integer("synthetic_steps", 400,
                     "Without --data_dir: longest song, in 1/16 steps (shortest is half).")
flags.DEFINE_float("synthetic_validation_fraction", 0.25,
                   "Without --data_dir: fraction of each style held out for validation.")
# Model.
flags.DEFINE_integer("hidden_size", 176, "LSTM units of the interpretation layer and of every "
                     "GenreNet layer (paper: 176).")
flags.DEFINE_integer("num_layers", 3, "Stacked (Bi)LSTM layers per GenreNet head (paper: 3).")
flags.DEFINE_bool("bidirectional", True, "Bidirectional GenreNet layers (paper: yes).")
flags.DEFINE_bool("interpretation_layer", True,
                  "Use the shared interpretation LSTM layer (paper: yes).")
flags.DEFINE_float("keep_prob", 0.8, "Dropout keep probability on LSTM inputs and outputs "
                   "(paper: 0.8; 1.0 disables dropout).")
flags.DEFINE_integer("unroll", 1, "lax.scan unroll factor of the time loops (speed only).")
flags.DEFINE_enum("precision", None, ["default", "high", "highest"],
                  "Matmul precision; 'highest' = true fp32 on GPUs that default to TF32.")
flags.DEFINE_enum("recurrence", "custom_vjp", ["custom_vjp", "autodiff"],
                  "How the LSTM time loop is differentiated: the hand-written backward pass "
                  "(faster) or JAX's own derivative of the scan (speed only; same maths).")
flags.DEFINE_bool("huge_pages", True, "Linux: re-execute with glibc's transparent-huge-page "
                  "malloc (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) unless GLIBC_TUNABLES already "
                  "sets it: far fewer page faults for XLA's large CPU buffers (speed only).")
flags.DEFINE_enum("matmul_dtype", "float32", ["float32", "bfloat16"],
                  "bfloat16: round every matmul's inputs to bf16, accumulate in fp32 (faster "
                  "where the hardware has bf16 units; changes results slightly).")
# Optimisation.
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (paper: 0.001).")
flags.DEFINE_enum("clip", "per_tensor", ["per_tensor", "global", "none"],
                  "Gradient clipping: each tensor's L2 norm separately (the paper's code), the "
                  "global norm of all gradients (optax.clip_by_global_norm), or none.")
flags.DEFINE_float("clip_norm", 10.0, "Maximum gradient norm for --clip (paper: 10).")
flags.DEFINE_enum("loss", "full", ["full", "active", "onset"], "MSE over the whole (T, 88) "
                  "velocity matrix of real steps (paper), over sounding (held) cells only, or "
                  "over onset cells only (the velocities written back to MIDI).")
# Batching.
flags.DEFINE_integer("window", 200, "Truncated-BPTT window in 1/16 steps (paper: 200).")
flags.DEFINE_integer("songs_per_batch", 4, "Songs of one style per mini-batch (paper: 4).")
flags.DEFINE_integer("windows_per_batch", 32, "Rows of a batch of independent windows (the "
                     "windows of --songs_per_batch songs fill batches of this fixed size).")
flags.DEFINE_bool("pack_windows", False, "Fill each style's batches with windows across "
                  "song groups, so only its last batch of an epoch has empty rows (faster "
                  "epochs; batches no longer hold exactly --songs_per_batch songs).")
flags.DEFINE_bool("carry_state", False, "Carry each song's forward LSTM state across its "
                  "consecutive windows (rows = songs) instead of independent windows.")
# Schedule and bookkeeping.
flags.DEFINE_integer("num_epochs", 160, "Epochs over the train split (paper: 160).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, dropout, data order (and synthetic "
                     "data).")
flags.DEFINE_integer("eval_every_epochs", 1, "Validation MSE every N epochs (and at the end); "
                     "0: only at the end.")
flags.DEFINE_integer("checkpoint_every_epochs", 1, "Checkpoint every N epochs (and at the "
                     "end); 0: only at the end. A resumed run restarts at the last one.")
flags.DEFINE_integer("keep_checkpoints", 3, "Newest checkpoints kept (the best is kept apart).")
flags.DEFINE_integer("snapshot_every_epochs", 10, "Fig. 17-style PNG of a validation song "
                     "every N epochs (and at the end); 0: never.")
flags.DEFINE_integer("log_every_steps", 50, "Read metrics from the device and append to "
                     "metrics.jsonl every N steps (and at each epoch end).")
flags.DEFINE_bool("progress", True, "Show a progress bar per epoch.")
flags.DEFINE_bool("export", True, "Write WORKDIR/inference.npz at the end.")
flags.DEFINE_string("compilation_cache_dir", "", "Persistent XLA compilation cache directory "
                    "(speeds up re-runs); empty: none.")
flags.DEFINE_bool("print_config", False, "Print the training config these flags resolve to "
                  "(JSON) and exit without training.")
flags.DEFINE_integer("debug_nan_step", -1, "Testing only: poison the loss with NaN at this "
                     "global step to exercise the non-finite stop.")

_RENAMED = {"use_interpretation_layer": "interpretation_layer"}


def train_config(data_dir: str):
    """The TrainConfig the parsed flags describe."""
    from stylenet_jax import training

    values = {f.name: FLAGS[_RENAMED.get(f.name, f.name)].value
              for f in dataclasses.fields(training.TrainConfig) if f.name != "data_dir"}
    return training.TrainConfig(data_dir=data_dir, **values)


def prepare_data(workdir: str) -> str:
    """``--data_dir``, else a dataset built from generated MIDI in ``workdir/data``."""
    if FLAGS.data_dir:
        return FLAGS.data_dir
    from data_prep import build, synthetic
    from stylenet_jax import dataset

    out = os.path.join(workdir, "data", "dataset")
    try:
        dataset.read_manifest(out)
        return out
    except dataset.DatasetError:
        pass
    midi_dir = os.path.join(workdir, "data", "midi")
    synthetic.write_synthetic_corpus(midi_dir, styles=tuple(FLAGS.synthetic_styles),
                                     songs_per_style=FLAGS.synthetic_songs_per_style,
                                     steps=FLAGS.synthetic_steps, seed=FLAGS.seed)
    build.build_dataset(midi_dir, out, seed=FLAGS.seed, workers=1,
                        validation_fraction=FLAGS.synthetic_validation_fraction,
                        log=lambda line: logging.info("%s", line))
    return out


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.huge_pages and not FLAGS.print_config:
        from stylenet_jax import hugepages

        hugepages.reexec(log=lambda line: logging.info("%s", line))
    import jax

    if FLAGS.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    from stylenet_jax import checkpoints, dataset, training

    try:
        config = train_config(FLAGS.data_dir)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if FLAGS.print_config:
        print(json.dumps(dataclasses.asdict(config), indent=1))
        return
    try:
        config = dataclasses.replace(config, data_dir=prepare_data(FLAGS.workdir))
        result = training.train_and_evaluate(config, FLAGS.workdir)
        if FLAGS.export:
            best = os.path.join(FLAGS.workdir, checkpoints.BEST)
            params, model_config, styles = (checkpoints.restore_params(best)
                                             if os.listdir(best) else
                                             (result.state.params, result.model_config,
                                              result.styles))
            path = checkpoints.export_inference(os.path.join(FLAGS.workdir, "inference.npz"),
                                                params, model_config, styles)
            logging.info("exported %s", path)
            evals = [r for r in result.records if r["kind"] == "eval"]
            warning = evals and training.collapse_warning(min(evals, key=lambda r: r["val_loss"]))
            if warning:
                logging.warning("exported a model that will not play: %s", warning)
    except (training.NonFiniteLossError, checkpoints.CheckpointError,
            dataset.DatasetError) as e:
        sys.exit(f"error: {e}")
    logging.info("done: %d epochs, %d steps, train step compiled %d time(s)", result.epoch,
                 int(result.state.step), result.train_compiles)


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    app.run(main)
