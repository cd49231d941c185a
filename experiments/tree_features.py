r"""Where the tree baseline's skill comes from (``results/tree_features.md``).

    python -m experiments.tree_features --data_dir=DATASET            # its test split
    python -m experiments.tree_features --data_dir=DATASET --split=validation \
        --features_model=MODEL.pkl --repeats=5 --out=runs/tree_features.md

Scores the tree baseline (``stylenet_jax.feature_baseline``) on a split's human performances,
style by style, then again with each group of its note features (pitch, metre, tempo, chord,
rolling statistics...: ``note_features.FEATURE_GROUPS``) shuffled among the notes, the other
columns as they were (``stylenet_jax.feature_importance``). A group whose shuffling costs
the most MAE and r is what the tree leans on most; a group that costs nothing tells it
nothing the others do not. ``--shuffle_within=performance`` shuffles each performance's notes
among themselves, so what a group says about the piece as a whole no longer counts. Writes the
Markdown table, its JSON and a bar chart; bad input prints one line on stderr and exits with
status 2.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import excerpt_judging
from experiments.evaluate import (BAD_INPUT, define_features_model_flag, progress_printer,
                                  read_performances, start_app)
from stylenet_jax.evaluation_plots import plot_grouped_bars
from stylenet_jax.feature_baseline import FeatureBaseline, FeatureBaselineError
from stylenet_jax.feature_importance import SCOPES, group_columns, group_importance
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.note_features import FEATURE_GROUPS

FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A dataset built by `python -m data_prep.build`: its "
                        "--split is scored.")
    flags.DEFINE_string("split", None, "Split of --data_dir (default: test if it has one, "
                        "else validation).")
    flags.DEFINE_string("midi_root", None, "Where --data_dir's MIDI files are now (default: "
                        "the folder its manifest names).")
    define_features_model_flag()
    flags.DEFINE_integer("repeats", 3, "Shuffles of each group; the report gives their mean "
                         "and standard deviation.")
    flags.DEFINE_integer("seed", 0, "Seed of the shuffles.")
    flags.DEFINE_enum("shuffle_within", SCOPES[0], list(SCOPES), "Shuffle a group among all "
                      "of a style's notes (a piece-wide column still tells the pieces apart) "
                      "or within each performance (what it says about a note against the "
                      "rest of its piece).")
    flags.DEFINE_string("out", "results/tree_features.md", "The Markdown report; its JSON and "
                        "picture go beside it (same stem).")
    flags.DEFINE_bool("progress", True, "Print a line per style.")


def render(results: list[dict], *, command: str, seconds: float, picture: str, data: str,
           model: str, repeats: int, scope: str) -> str:
    """The Markdown report: one row per feature group, MAE rise and r fall per style."""
    styles = [r["style"] for r in results]
    lines = [
        "# Where the tree baseline's skill comes from", "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{seconds:.0f} s wall.", "",
        f"Data: {data}. The tree: `{model}`.", "",
        "Each group of the tree's note features shuffled together among "
        + ("a style's notes" if scope == SCOPES[0] else "each performance's own notes")
        + ", the other columns as they were: how much higher its MAE (velocity units) and "
        "lower its Pearson r come out than with every column in place, the mean ± sd over "
        f"{repeats} shuffles. Larger: the tree leans on the group more; near 0: the group "
        "tells it nothing the other groups do not.", "",
        "| style | songs | notes | MAE | r |", "|---|---|---|---|---|",
        *[f"| {r['style']} | {r['songs']} | {r['notes']:,} | {r['mae']:.2f} | {r['r']:.3f} |"
          for r in results], "",
        "| group (columns) | " + " | ".join(f"{s} MAE rise | {s} r fall" for s in styles)
        + " |", "|---" * (2 * len(styles) + 1) + "|"]
    for k, row in enumerate(results[0]["groups"] if results else []):
        cells = []
        for r in results:
            g = r["groups"][k]
            cells += [f"{g['mae_increase']:+.2f} ± {g['mae_increase_sd']:.2f}",
                      f"{g['r_drop']:+.3f} ± {g['r_drop_sd']:.3f}"]
        lines.append(f"| {row['group']} ({row['columns']}) | " + " | ".join(cells) + " |")
    lines += ["", "Groups (`stylenet_jax/note_features.py` describes each column):", "",
              *[f"- {group}: " + ", ".join(f"`{n}`" for n in names)
                for group, names in FEATURE_GROUPS.items()], "",
              f"![MAE rise by feature group]({picture})", ""]
    return "\n".join(lines)


def plot(path: str, results: list[dict]) -> str:
    """A horizontal bar per group and style (MAE rise, sd as error bar); writes ``path``."""
    groups = [g["group"] for g in results[0]["groups"]] if results else []
    series = {r["style"]: ([g["mae_increase"] for g in r["groups"]],
                           np.array([g["mae_increase_sd"] for g in r["groups"]]))
              for r in results}
    return plot_grouped_bars(path, groups, series,
                             xlabel="MAE rise when the group is shuffled (velocity units)")


def main(argv: Sequence[str]) -> None:
    began = start_app(argv)
    if not FLAGS.data_dir:
        print("error: --data_dir is required (a dataset built by data_prep.build)",
              file=sys.stderr)
        sys.exit(2)
    if FLAGS.repeats < 1:
        print(f"error: --repeats must be at least 1, got {FLAGS.repeats}", file=sys.stderr)
        sys.exit(2)
    try:
        tree = FeatureBaseline.load(FLAGS.features_model)
        performed, data = read_performances(FLAGS.data_dir, None, split=FLAGS.split,
                                            midi_root=FLAGS.midi_root)
    except (*BAD_INPUT, FeatureBaselineError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    log = progress_printer(FLAGS.progress)
    log(f"{len(performed)} performances; {len(group_columns(tree.extras))} "
        f"groups x {FLAGS.repeats} shuffles per style")
    results = group_importance(tree, performed, repeats=FLAGS.repeats, seed=FLAGS.seed,
                               scope=FLAGS.shuffle_within, log=log)
    if not results:
        print(f"error: none of the performances is in a style the tree plays "
              f"({', '.join(tree.styles)})", file=sys.stderr)
        sys.exit(2)
    excerpt_judging.write_report(results, "experiments.tree_features", began, render, plot,
                                 data=data, model=os.path.relpath(FLAGS.features_model),
                                 repeats=FLAGS.repeats, scope=FLAGS.shuffle_within)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
