r"""Fit the Gaussian scatter ``stylize --humanize`` can add, from a model's misses on unseen pieces.

    python -m experiments.fit_humanize --data_dir=runs/data/heldout_quarter --split=validation

Every performance of ``--split`` (pieces the model never trained on) is flattened and performed
by the model as ``experiments.evaluate`` performs it; the residuals (pianist minus model) of
each style are fitted by ``stylenet_jax.humanize.fit`` and written to ``--out`` (JSON; the
default is the shipped Gaussian scatter, which ``stylize --humanize_scatter`` can name; the
default scatter is the learned one, ``experiments.train_scatter``). Fit on validation, never on
the test split the reports score. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import evaluate
from stylenet_jax import encoding, evaluation, humanize
from stylenet_jax.flag_parsing import parse_flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
    evaluate.define_performance_flags("fitted")
    FLAGS.set_default("split", "validation")  # never the test split the reports score
    flags.DEFINE_string("checkpoint", None, "The model whose misses are fitted: an inference "
                        "export, ensemble or training workdir (default: the shipped model).")
    evaluate.define_features_model_flag()
    flags.DEFINE_integer("max_lag", humanize.MAX_LAG, "Onset groups over which the slow "
                         "part's correlation is fitted.", lower_bound=1)
    flags.DEFINE_string("out", humanize.GAUSSIAN_PATH, "JSON file to write (default: the "
                        "shipped Gaussian scatter, stylenet_jax/assets/humanize.json).")
    flags.DEFINE_bool("progress", True, "Print a line per performance.")


def residuals_by_style(performed: Sequence, system: evaluation.System,
                       log=lambda line: None) -> dict[str, tuple[list, list]]:
    """{style: (residuals, groups)}: per performance, float64 (n,) pianist minus ``system``
    (which performs it flattened, as ``experiments.evaluate`` has it) and int64 (n,) onset
    groups (``humanize.onset_groups``)."""
    out: dict[str, tuple[list, list]] = {}
    for count, human in enumerate(performed, 1):
        played = evaluation.perform_piece(evaluation.flatten(human), [system])[system.name]
        log(f"[{count}/{len(performed)}] {human.id} ({len(human.notes)} notes)")
        onset, _ = encoding.quantize(human.notes, human.ticks_per_beat)
        residuals, groups = out.setdefault(human.style, ([], []))
        residuals.append(human.notes.velocity.astype(np.float64) - played.velocities)
        groups.append(humanize.onset_groups(onset))
    return out


def main(argv: Sequence[str]) -> None:
    began = evaluate.start_app(argv)
    try:
        performed, data = evaluate.load_performances()  # the same flags, defined above
        specs = [f"model={FLAGS.checkpoint}"] if FLAGS.checkpoint else None
        systems, described = evaluate.build_systems(specs, [],
                                                    features_model=FLAGS.features_model)
        evaluation.check_styles(performed, systems)
    except evaluate.BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    log = evaluate.progress_printer(FLAGS.progress)
    scatters, counts = {}, {}
    for style, (residuals, groups) in residuals_by_style(performed, systems[0], log).items():
        try:
            scatters[style] = humanize.fit(residuals, groups, FLAGS.max_lag)
        except ValueError as e:
            print(f"error: {style}: {e}", file=sys.stderr)
            sys.exit(2)
        counts[style] = {"performances": len(residuals),
                         "notes": int(sum(len(r) for r in residuals)),
                         "residual_sd": float(np.std(np.concatenate(residuals)))}
    about = {"data": data, "model": described["model"], "counts": counts,
             "seconds": round(time.perf_counter() - began, 1)}
    command = "python -m experiments.fit_humanize " + " ".join(sys.argv[1:])
    humanize.save(FLAGS.out, scatters, command, about)
    for style, scatter in scatters.items():
        values = ", ".join(f"{k} {v:.3g}" for k, v in dataclasses.asdict(scatter).items())
        print(f"{style}: {values} ({counts[style]['performances']} performances, "
              f"{counts[style]['notes']} notes)")
    print(f"wrote {os.path.relpath(FLAGS.out)} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
