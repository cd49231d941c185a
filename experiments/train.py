r"""Train StyleNet: ``python -m experiments.train --flagfile=experiments/configs/stylenet.flags
--workdir=DIR`` (any flag may be overridden after the flagfile).

Every setting is a field of ``stylenet_jax.config.Config``; its flag is generated from that
field (``config_flags``). With ``--data_dir`` it trains on a dataset built by
``python -m data_prep.build``; without, it first writes a small generated MIDI corpus and
builds it into ``DIR/data`` (reused if there). Re-running with the same ``--workdir`` resumes
from its newest checkpoint. At the end the best (else last) parameters are exported to
``DIR/inference.npz`` (float16, no optimizer state).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Sequence

from absl import flags, logging

from experiments import launch
from stylenet_jax import config_flags
from stylenet_jax.flag_parsing import make_writable_folder, usage_error

FLAGS = flags.FLAGS
config_flags.define_flags()
flags.adopt_module_key_flags(config_flags)  # --help lists every setting
flags.adopt_module_key_flags(launch)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints/, metrics.jsonl, "
                    "snapshots/, inference.npz. An existing one is resumed.")
flags.DEFINE_bool("export", True, "Write WORKDIR/inference.npz at the end.")
flags.DEFINE_string("compilation_cache_dir", "", "Persistent XLA compilation cache directory "
                    "(speeds up re-runs); empty: none.")
flags.DEFINE_string("coordinator_address", "", "Several processes (jax.distributed): "
                    "host:port of process 0, the same in every process; with --num_processes "
                    "and --process_id. Empty: one process, unless --distributed.")
flags.DEFINE_integer("num_processes", 1, "Several processes: how many.")
flags.DEFINE_integer("process_id", 0, "Several processes: this one's index, 0 .. N-1.")
flags.DEFINE_bool("distributed", False, "Several processes, set up from the cluster "
                  "environment JAX detects (SLURM, Open MPI, ...), without the three flags.")
flags.DEFINE_bool("print_config", False, "Print the training config these flags resolve to "
                  "(JSON) and exit without training.")


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = config_flags.config_from_flags()
    except ValueError as e:
        usage_error(str(e))
    workdir = FLAGS.workdir
    several = FLAGS.coordinator_address or FLAGS.distributed
    if several and not config.data.data_dir:
        usage_error("several processes need --data_dir (a dataset they all read)")
    if not FLAGS.print_config:
        make_writable_folder("workdir", workdir)
    if FLAGS.print_config:
        print(json.dumps(dataclasses.asdict(config), indent=1))
        return
    import jax

    if several:
        from stylenet_jax import parallel

        parallel.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                        FLAGS.process_id)
    if FLAGS.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    from data_prep import synthetic
    from stylenet_jax import checkpoints, dataset, training

    try:
        data_dir = config.data.data_dir or synthetic.build_in_workdir(
            FLAGS.workdir, config.data, config.schedule.seed,
            log=lambda line: logging.info("%s", line))
        config = config.replace(data_dir=data_dir)
        result = training.train_and_evaluate(config, FLAGS.workdir)
        if FLAGS.export:
            path = checkpoints.export_run(FLAGS.workdir, result.state.params,
                                          result.model_config, result.styles)
            logging.info("exported %s", path)
            evals = [r for r in result.records if r["kind"] == "eval"]
            warning = evals and training.collapse_warning(min(evals, key=lambda r: r["val_loss"]))
            if warning:
                logging.warning("exported a model that will not play: %s", warning)
    except (training.NonFiniteLossError, checkpoints.CheckpointError,
            dataset.DatasetError) as e:
        sys.exit(f"error: {e}")
    except training.RunSetupError as e:
        usage_error(str(e))
    except OSError as e:  # a disk that fills up or turns read-only mid-run
        sys.exit(f"error: {e.filename or workdir}: {e.strerror or e}")
    logging.info("done: %d epochs, %d steps, train step compiled %d time(s)", result.epoch,
                 int(result.state.step), result.train_compiles)


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    launch.run(main, skip=lambda: FLAGS.print_config)
