"""What the apps that judge systems on excerpt pairs share (``experiments.classifier_features``,
``experiments.judges``): their flags, reading the performances and systems (bad input: one
line on stderr, status 2, nothing written), and writing the report with its JSON and picture.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable

from absl import flags

from experiments.evaluate import BAD_INPUT, build_systems, define_features_model_flag, \
    define_palette_flag, define_per_style_flag, define_performance_flags, load_performances
from stylenet_jax import evaluation, humanize
from stylenet_jax.atomic_write import write_text_atomically

FLAGS = flags.FLAGS


def define_flags(report: str, progress: str) -> None:
    """The performances, the systems (as ``experiments.evaluate`` builds them), the excerpts,
    the seed, ``--out`` (default ``report``) and ``--progress`` (a line per performance and
    per ``progress``)."""
    define_performance_flags("cut into excerpts")
    flags.DEFINE_multi_string("model", None, "NAME=PATH of a model (inference export or "
                              "training workdir). Repeatable. Default: model=the shipped "
                              "model.")
    flags.DEFINE_list("baselines", ["features"], "Baselines to judge too: "
                      + ", ".join(evaluation.BASELINES) + " (empty: none).")
    flags.DEFINE_multi_string("contrast", [], "NAME=SYSTEM:C: also a widened system, as in "
                              "experiments.evaluate --contrast. Repeatable.")
    flags.DEFINE_multi_string("humanize", [], "NAME=SYSTEM:AMOUNT[@SCATTER]: also a system "
                              "with a scatter added, as in experiments.evaluate --humanize "
                              "(SCATTER: a file, or "
                              f"{', '.join(humanize.SHIPPED_SCATTERS)}). Repeatable.")
    define_palette_flag()
    define_per_style_flag()
    define_features_model_flag()
    flags.DEFINE_float("excerpt_seconds", 10.0, "Excerpt length (the paper's clips: 10 s).")
    flags.DEFINE_integer("seed", 0, "Seed of the piece split, the scatters' draws, the "
                         "classifiers and their bootstrap.")
    flags.DEFINE_string("out", report, "Markdown report to write (with .json and a .png "
                        "beside it).")
    flags.DEFINE_bool("progress", True, f"Print a line per performance and per {progress}.")


def read_or_exit(check: Callable[[], None] = lambda: None) -> tuple[list, str, list, dict]:
    """(performed, data line, systems, {system: description}) from the flags, after
    ``check()`` (which raises ValueError for a bad flag of the app's own). Bad input prints
    one line on stderr and exits with status 2."""
    try:
        if not FLAGS.excerpt_seconds > 0:
            raise ValueError(f"--excerpt_seconds must be positive, got {FLAGS.excerpt_seconds}")
        check()
        performed, data = load_performances()
        systems, described = build_systems(FLAGS.model, FLAGS.baselines,
                                           features_model=FLAGS.features_model,
                                           seed=FLAGS.seed, contrast_specs=FLAGS.contrast,
                                           humanize_specs=FLAGS.humanize,
                                           palette_specs=FLAGS.palette,
                                           per_style_specs=FLAGS.per_style)
        evaluation.check_styles(performed, systems)
        if len({p.piece for p in performed}) < 2:
            raise ValueError("need performances of at least 2 pieces (half train a judge, "
                             "half are scored)")
    except BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return performed, data, systems, described


def write_report(results: dict, command: str, began: float,
                 render: Callable[..., str], plot: Callable[[str, dict], str],
                 **render_args) -> None:
    """Draws ``plot(STEM.png, results)``, then writes ``STEM.json`` and ``--out`` (the text of
    ``render(results, command=..., seconds=..., picture=..., **render_args)``), each whole
    or not at all, and says so."""
    stem = os.path.splitext(FLAGS.out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    picture = plot(stem + ".png", results)
    text = render(results, command=f"python -m {command} " + " ".join(sys.argv[1:]),
                  seconds=time.perf_counter() - began,
                  picture=os.path.relpath(picture, os.path.dirname(os.path.abspath(FLAGS.out))),
                  **render_args)
    write_text_atomically(stem + ".json", json.dumps(results, indent=1) + "\n")
    write_text_atomically(FLAGS.out, text + "\n")
    print(f"wrote {FLAGS.out}, {stem}.json and {picture}")
