r"""Train the gradient-boosted-trees baseline (``stylenet_jax.feature_baseline``) on a dataset.

    python -m experiments.feature_baseline --data_dir=DATASET --out=MODEL.pkl
    python -m experiments.feature_baseline --data_dir=DATASET --midi_dir=FOLDER --out=MODEL.pkl

Reads the MIDI files behind the dataset's training split (a dataset built by
``python -m data_prep.build``; ``--midi_dir`` if the files have moved since the build), fits
one regressor per style on ``note_features`` rows, saves the model, and prints per style the
training notes, the wall time, and on the validation split the mean absolute velocity error
(MIDI units) and Pearson r, beside the MAE of a constant (the style's mean training velocity).
``--phrase_context`` adds the columns of ``stylenet_jax.phrase_context``, ``--melody_line`` those
of ``stylenet_jax.melody_line``, ``--pedals`` those of ``stylenet_jax.pedal_columns`` (the
pianist's pedals; ``--hide_pedals=0.5`` hides them from half the training performances), and
``--error=absolute`` fits each note's median velocity instead of its mean; ``--borrow=jazz:pop``
lets jazz's trees also learn from pop's notes (``stylenet_jax.tree_borrowing``). All are off by
default; ``SHIPPED_RECIPE`` names the shipped tree's flags.
Bad input prints one line on stderr and exits with status 2.

The trees use every core; on a shared machine set ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from stylenet_jax import dataset, performances, smf
from stylenet_jax.config import ERRORS
from stylenet_jax.feature_baseline import (DEFAULT_PATH, DEFAULT_SETTINGS, EXTRA_COLUMNS,
                                           TREE_LOSSES, FeatureBaseline, FeatureBaselineError,
                                           check_hide_pedals, evaluate)
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.tree_borrowing import BorrowError, parse_borrow


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A dataset built by `python -m data_prep.build`: its "
                        "train split is fitted, its validation split scored.")
    flags.DEFINE_string("midi_dir", None, "The folder the dataset was built from (default: the "
                        "path recorded in its manifest).")
    flags.DEFINE_string("out", DEFAULT_PATH, "Where to save the fitted model (written "
                        "atomically; default: the shipped "
                        "stylenet_jax/assets/feature_baseline.pkl, fitted with "
                        f"{SHIPPED_RECIPE}).")
    flags.DEFINE_integer("seed", 0, "Seed of the trees and of the songs held out for early "
                         "stopping.")
    define_tree_flags()


# The flags that fitted the shipped tree (stylenet_jax/assets/feature_baseline.pkl) on the
# quarter-beat build of README "The shipped model".
SHIPPED_RECIPE = ("--melody_line --phrase_context --borrow=jazz:pop+classical --pedals "
                  "--hide_pedals=0.5")

# What each optional column set (feature_baseline.EXTRA_COLUMNS) gives the trees; its flag
# has its name.
EXTRA_COLUMN_HELP = {
    "phrase_context": "the music over 2 to 32 beats around each note, relative to the piece: "
                      "stylenet_jax/phrase_context.py",
    "melody_line": "the tune's contour, peaks and runs around each note: "
                   "stylenet_jax/melody_line.py",
    "pedals": "the sustain and soft pedals under each note, as the file holds them: a "
              "performance's, which a sheet-music file rarely has: "
              "stylenet_jax/pedal_columns.py",
}


def define_tree_flags() -> None:
    """The flags of the trees' settings and optional column sets, for every app that fits
    trees (read back by ``tree_settings_from_flags`` and ``extras_from_flags``)."""
    flags.DEFINE_integer("max_iter", DEFAULT_SETTINGS["max_iter"], "Most boosting rounds (trees) "
                         "per style; early stopping may end sooner.")
    flags.DEFINE_multi_string("rounds", [], "STYLE:N: STYLE's trees stop at N rounds at "
                              "most instead of --max_iter, e.g. classical:200 (tried for the "
                              "shipped tree and not kept: README, 'A hybrid'). Repeatable. "
                              "Off by default.")
    flags.DEFINE_integer("max_leaf_nodes", DEFAULT_SETTINGS["max_leaf_nodes"], "Leaves per tree.")
    flags.DEFINE_integer("min_samples_leaf", DEFAULT_SETTINGS["min_samples_leaf"], "Fewest "
                         "training notes in a leaf.")
    flags.DEFINE_float("learning_rate", DEFAULT_SETTINGS["learning_rate"], "Shrinkage of each "
                       "tree's contribution.")
    flags.DEFINE_enum("error", "squared", list(ERRORS), "The error each tree minimises: "
                      "squared fits each note's mean velocity given its features (the shipped "
                      "tree), absolute its median (the evaluation's MAE is lowest at the median). "
                      "An experiment; score it with experiments.evaluate --model NAME=PATH.")
    flags.DEFINE_multi_string("borrow", [], "STYLE:LENDER[+LENDER...]: STYLE's trees also "
                              "learn from the lenders' notes, marked as theirs, and weighted to "
                              "weigh as much as STYLE's own (stylenet_jax/tree_borrowing.py), "
                              "e.g. jazz:pop. Repeatable. Off by default.")
    flags.DEFINE_float("hide_pedals", 0.0, "With --pedals: the share (0..1) of training "
                       "performances whose pedals the trees never see, drawn with --seed, so "
                       "that one tree plays files with and without a pianist's pedals. Off by "
                       "default.")
    flags.DEFINE_bool("stop_on_pieces", False, "Hold out whole pieces, not songs, for early "
                      "stopping (drawn by song, the held-out songs are mostly other "
                      "performances of pieces the trees train on). Off by default, as the "
                      "shipped tree was fitted; on one classical fold it stopped too soon "
                      "(README, 'A hybrid').")
    for name in EXTRA_COLUMNS:
        flags.DEFINE_bool(name, False, f"Also give the trees these columns "
                          f"({EXTRA_COLUMN_HELP[name]}). Off by default; score a tree with "
                          "experiments.evaluate --model NAME=PATH.")


def tree_settings_from_flags() -> dict:
    """The ``FeatureBaseline.fit`` settings of the flags of ``define_tree_flags``; raises
    FeatureBaselineError (one line) for a value the trees cannot take."""
    f = flags.FLAGS
    if (f.max_iter < 1 or f.max_leaf_nodes < 2 or f.min_samples_leaf < 1
            or not f.learning_rate > 0):
        raise FeatureBaselineError("need --max_iter >= 1, --max_leaf_nodes >= 2, "
                                   "--min_samples_leaf >= 1 and --learning_rate > 0")
    settings = {"max_iter": f.max_iter, "max_leaf_nodes": f.max_leaf_nodes,
                "min_samples_leaf": f.min_samples_leaf, "learning_rate": f.learning_rate,
                "loss": TREE_LOSSES[f.error]}
    try:
        borrow = parse_borrow(f.borrow)
    except BorrowError as e:
        raise FeatureBaselineError(str(e)) from None
    if borrow:  # recorded only when used, so the default settings read as before
        settings["borrow"] = {style: list(lenders) for style, lenders in borrow.items()}
    check_hide_pedals(f.hide_pedals, extras_from_flags())  # before any file is read
    if f.hide_pedals:  # likewise
        settings["hide_pedals"] = f.hide_pedals
    if f.stop_on_pieces:  # likewise
        settings["stop_on_pieces"] = True
    if f.rounds:  # likewise
        settings["rounds"] = parse_rounds(f.rounds)
    return settings


def parse_rounds(specs: Sequence[str]) -> dict[str, int]:
    """``["classical:200"]`` -> ``{"classical": 200}``; raises FeatureBaselineError (one
    line) for a spec that is not STYLE:N with N >= 1, or a style named twice."""
    rounds: dict[str, int] = {}
    for spec in specs:
        style, _, count = (part.strip() for part in spec.partition(":"))
        if not style or not count.isdigit() or int(count) < 1 or style in rounds:
            raise FeatureBaselineError(f"--rounds {spec!r}: expected STYLE:N with N >= 1, "
                                       "each style once, e.g. classical:200")
        rounds[style] = int(count)
    return rounds


def extras_from_flags() -> tuple[str, ...]:
    """The optional column sets whose flags (``define_tree_flags``) are on."""
    return tuple(name for name in EXTRA_COLUMNS if flags.FLAGS[name].value)


def constant_mae(train: Sequence[performances.Performed],
                 check: Sequence[performances.Performed]) -> dict[str, float]:
    """Per style: mean |v - mean training velocity of the style| over ``check``'s notes."""
    out = {}
    for style in sorted({p.style for p in check} & {p.style for p in train}):
        mean = np.concatenate([p.notes.velocity for p in train if p.style == style]).mean()
        human = np.concatenate([p.notes.velocity for p in check if p.style == style])
        out[style] = float(np.abs(human - mean).mean())
    return out


def run(data_dir: str, midi_dir: str | None, out: str, seed: int,
        extras: Sequence[str] = (), **settings) -> FeatureBaseline:
    """Fits, saves and reports (stdout); raises the library errors on bad input."""
    began = time.perf_counter()
    train = performances.from_dataset(data_dir, "train", midi_root=midi_dir)
    check = performances.from_dataset(data_dir, "validation", midi_root=midi_dir)
    print(f"read {len(train)} training and {len(check)} validation files in "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    fit_began = time.perf_counter()
    baseline = FeatureBaseline.fit(train, seed=seed, log=lambda line: print(line, flush=True),
                                   extras=extras, **settings)
    fit_seconds = time.perf_counter() - fit_began
    baseline.save(out)
    print(f"fitted in {fit_seconds:.1f} s; saved {out}")
    constant = constant_mae(train, check)
    print("\n| style | training notes | validation songs | validation notes | MAE | Pearson r "
          "| MAE of the mean training velocity |\n|---|---|---|---|---|---|---|")
    rows = {style: sum(len(p.notes) for p in train if p.style == style)
            for style in baseline.styles}
    for result in evaluate(baseline, check):
        print(f"| {result['style']} | {rows[result['style']]:,} | {result['songs']} | "
              f"{result['notes']:,} | {result['mae']:.2f} | {result['r']:.3f} | "
              f"{constant.get(result['style'], float('nan')):.2f} |")
    print(f"\nwall time {time.perf_counter() - began:.1f} s")
    return baseline


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    f = flags.FLAGS
    if not f.data_dir:
        print("error: --data_dir is required (a dataset built by data_prep.build)",
              file=sys.stderr)
        sys.exit(2)
    try:
        run(f.data_dir, f.midi_dir, f.out, f.seed, extras=extras_from_flags(),
            **tree_settings_from_flags())
    except (dataset.DatasetError, performances.PerformancesError, smf.MidiError,
            FeatureBaselineError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
