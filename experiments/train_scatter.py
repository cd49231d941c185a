r"""Train the learned scatter that ``stylize --humanize`` draws (``stylenet_jax.learned_scatter``).

    python -m experiments.train_scatter --data_dir=runs/data/heldout_quarter \
        --prior_dir=runs/priors/heldout_quarter

The network learns to scatter a system's velocities until the identify-the-human classifier's
scorer cannot tell them from the pianist's (``stylenet_jax.scatter_training``). The system is
the tree baseline's out-of-fold velocities on the ``--split`` pieces (``experiments.tree_prior``
made them from trees that never saw the piece): the shipped model reads them and plays close to
them, and unlike the model's own they are honest on the pieces it trained on, which are most of
the data. ``--system=model`` scatters a StyleNet model's velocities instead (the shipped one
reading the same out-of-fold grids, as its training read them): what ``stylize`` plays the
scatter around; ``--system=both`` learns around both, every excerpt twice. Train on the
training split; the reports score the test split. One compile, then about 0.06 s a step on
a 2-core CPU (5000 steps: 320 s). ``--scorers=pooled,per_style`` also plays it against a
scorer per style (the shipped ``both_judges`` scatter; about 0.15 s a step).
``--palette=shipped`` plays every draw on its style's velocity palette during training, as
``stylize --humanize --palette`` writes it. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import evaluate
from stylenet_jax import (excerpt_statistics, human_classifier, learned_scatter, performer,
                          scatter_training, straight_through_palette, tree_prior,
                          velocity_palette)
from stylenet_jax.flag_parsing import parse_flags

FLAGS = flags.FLAGS
TREE, MODEL, BOTH = "tree", "model", "both"  # --system: what the scatter plays around


COLUMN_HELP = {  # the flag of each of excerpt_statistics.SCORER_COLUMNS
    "velocity_sharing": "Let the scorers also see, for each note, one over how many of the "
                        "excerpt's notes share its velocity, so they can count distinct "
                        "velocities (the judges' first tell of the scatters); about O(notes^2).",
    "duration_coupling": "Let the scorers also see, for each note, the product of its "
                         "velocity's and its log duration's standard scores in the excerpt, "
                         "whose mean is their correlation (the classical judges' first tell "
                         "of the scatters).",
}


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A dataset built by data_prep.build: its --split "
                        "is cut into excerpts.")
    flags.DEFINE_string("split", "train", "Split of --data_dir to learn from (never the test "
                        "split the reports score).")
    flags.DEFINE_string("midi_root", None, "Where --data_dir's MIDI files are now (default: the "
                        "folder recorded when it was built).")
    flags.DEFINE_string("prior_dir", None, "The tree priors of --data_dir "
                        "(python -m experiments.tree_prior): the system that is scattered.")
    flags.DEFINE_enum("system", TREE, [TREE, MODEL, BOTH], "The velocities the scatter learns "
                      "to play around: the tree's out-of-fold ones in --prior_dir, those of the "
                      "StyleNet model --model reading them (on the training split a hybrid's "
                      "out-of-fold velocities play about as close to the pianists as on "
                      "pieces it never saw; one pass, about 5 min for 770 performances), or "
                      "both: every excerpt twice, once around each.")
    flags.DEFINE_string("model", None, "With --system=model or both: the model (default: "
                        "the shipped one, stylize's).")
    flags.DEFINE_integer("steps", scatter_training.DEFAULT_STEPS, "Training rounds (two "
                         "scorer steps and one network step each).", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "PRNG seed of the initial weights, batches and noise.",
                         lower_bound=0)
    flags.DEFINE_integer("max_notes", 512, "Notes per 10-second excerpt (longer ones keep "
                         "their first notes).", lower_bound=16)
    flags.DEFINE_float("accuracy_weight", scatter_training.Settings().accuracy_weight,
                       "Also charge the network this much per velocity unit of mean distance "
                       "from the pianist (0: realism alone).", lower_bound=0.0)
    flags.DEFINE_list("style_accuracy_weight", [], "STYLE:WEIGHT,...: charge these styles' "
                      "excerpts this weight instead of --accuracy_weight (e.g. pop:0.2).")
    flags.DEFINE_bool("balance_styles", scatter_training.Settings().balance_styles,
                      "Draw each style's excerpts equally often (else each excerpt equally "
                      "often: mostly classical).")
    flags.DEFINE_float("ema_decay", scatter_training.Settings().ema_decay, "Above 0: write an "
                       "exponential moving average of the network's weights with this decay "
                       "per step (0: the last step's weights).", lower_bound=0.0,
                       upper_bound=0.9999)
    flags.DEFINE_integer("scorer_reset_every", scatter_training.Settings().scorer_reset_every,
                         "Above 0: start a fresh scorer every this many steps, so the network "
                         "also meets the tells a new classifier finds first (0: one scorer).",
                         lower_bound=0)
    flags.DEFINE_list("scorers", list(scatter_training.Settings().scorers), "The scorers the "
                      "network plays against, its loss their mean: 'pooled' (one scorer of every "
                      "style's excerpts, as the evaluation's classifier), 'per_style' (one "
                      "scorer a style, each of its style's excerpts alone, as the one-style "
                      "judges), or both.")
    flags.DEFINE_list("scorer_weight", [], "KIND:WEIGHT,...: weigh these kinds of --scorers "
                      "this much in the network's loss instead of 1 (e.g. per_style:3).")
    for name in excerpt_statistics.SCORER_COLUMNS:  # a flag each, off: the scorers' extra columns
        flags.DEFINE_bool(name, False, COLUMN_HELP[name])
    flags.DEFINE_integer("width", scatter_training.Settings().width, "Channels of the scatter "
                         "network's layers (the file records it; stylize reads it from there).",
                         lower_bound=1)
    flags.DEFINE_integer("context_notes", 0, "Above 0: give the scatter network a view of "
                         "the passage, the mean of its last layer over this many notes either "
                         "side of each note (its convolutions see 29 notes; the file records "
                         "it). 0: the shipped network.", lower_bound=0)
    flags.DEFINE_float("statistics_weight", 0.0, "Above 0: also charge the network this much "
                       "for each style's mean offset from the pianists, in standard deviations "
                       "squared and summed, in the trees' excerpt statistics it can match "
                       "(stylenet_jax.excerpt_statistics.MATCHED_STATISTICS). 0: the shipped "
                       "game.", lower_bound=0.0)
    flags.DEFINE_string("palette", None, "A velocity palette file (experiments.fit_palette; "
                        "'shipped': stylize's): play every draw on its style's palette, as "
                        "stylize --humanize --palette writes it, so the network learns against "
                        "what is written (straight through). Unset: the shipped game.")
    flags.DEFINE_integer("scorer_width", scatter_training.Settings().scorer_width,
                         "Channels of the scorer the network plays against (the evaluation's "
                         f"classifier has {human_classifier.WIDTH}; the file records it).",
                         lower_bound=1)
    flags.DEFINE_string("out", learned_scatter.DEFAULT_PATH, "The .npz file to write.")
    flags.DEFINE_bool("progress", True, "Print a line every 250 steps.")


def system_velocities(performed: Sequence, prior_dir: str, system: str,
                      model_path: str | None, log) -> list[np.ndarray]:
    """int64 (n,) per performance: the velocities the scatter plays around (``--system``).
    A hybrid model reads each piece's out-of-fold tree grid, never the shipped tree, which
    saw the training pieces."""
    index = tree_prior.read_index(prior_dir)
    if system == TREE:
        return [tree_prior.note_priors(prior_dir, p, index) for p in performed]
    from stylenet_jax import encoding, evaluation

    model = evaluation.ModelSystem(performer.Stylizer(model_path))
    evaluation.check_styles(performed, [model])
    velocities = []
    for done, p in enumerate(performed, 1):
        steps = encoding.grid_steps(p.notes, p.ticks_per_beat)
        grids = ({p.style: tree_prior.load_prior(prior_dir, p.id, steps, index)}
                 if model.stylizer.tree is not None else None)
        velocities.append(model.perform(evaluation.flatten(p), grids).velocities)
        if done % 100 == 0 or done == len(performed):
            log(f"the model played {done}/{len(performed)} performances")
    return velocities


def system_description(system: str, prior_dir: str, model_path: str | None) -> str:
    """The ``about`` line of what the scatter learned to play around (``--system``)."""
    tree = f"the tree's out-of-fold velocities, `{prior_dir}`"
    model = (f"the model `{model_path or performer.DEFAULT_MODEL}` reading the tree's "
             f"out-of-fold velocities, `{prior_dir}`")
    return {TREE: tree, MODEL: model,
            BOTH: f"each excerpt twice: around {tree}, and around {model}"}[system]


def named_weights(given: Sequence[str], names: Sequence[str], default: float,
                  flag: str) -> dict:
    """{name: weight} for every name of ``names`` in order: ``default``, or the WEIGHT of a
    NAME:WEIGHT entry of ``given`` (the value of ``--flag``). Raises ValueError (one line) for
    a malformed entry, a name not in ``names``, a name given twice or a negative weight."""
    weights = dict.fromkeys(names, default)
    seen = set()
    for entry in given:
        name, _, weight = entry.partition(":")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"--{flag} {entry!r}: write NAME:WEIGHT") from None
        if name not in weights or name in seen or value < 0:
            raise ValueError(f"--{flag} {entry!r}: name each of {list(names)} at most once, "
                             "with a weight of 0 or more")
        weights[name] = value
        seen.add(name)
    return weights


def main(argv: Sequence[str]) -> None:
    began = evaluate.start_app(argv)
    log = evaluate.progress_printer(FLAGS.progress)
    try:
        if not FLAGS.data_dir or not FLAGS.prior_dir:
            raise ValueError("give --data_dir and --prior_dir (see --help)")
        if FLAGS.split == "test":
            raise ValueError("--split test: the reports score the test split; learn from train")
        if not FLAGS.out.endswith(".npz"):
            raise ValueError(f"--out {FLAGS.out}: name an .npz file")
        by_kind = named_weights(FLAGS.scorer_weight, FLAGS.scorers, 1.0, "scorer_weight")
        scorer_weights = tuple(by_kind.values()) if FLAGS.scorer_weight else ()
        scorers = scatter_training.check_scorers(FLAGS.scorers, FLAGS.balance_styles,
                                                 scorer_weights)
        columns = tuple(name for name in excerpt_statistics.SCORER_COLUMNS if FLAGS[name].value)
        palette_path = (velocity_palette.DEFAULT_PATH if FLAGS.palette == "shipped"
                        else FLAGS.palette)
        palettes = velocity_palette.load(palette_path) if palette_path else None
        performed, data = evaluate.read_performances(FLAGS.data_dir, None, split=FLAGS.split,
                                                     midi_root=FLAGS.midi_root)
        if not performed:
            raise ValueError(f"{FLAGS.data_dir}: the {FLAGS.split} split has no performances")
        kinds = (TREE, MODEL) if FLAGS.system == BOTH else (FLAGS.system,)
        system = [v for kind in kinds  # with both: each performance around the tree, then model
                  for v in system_velocities(performed, FLAGS.prior_dir, kind, FLAGS.model, log)]
        styles = sorted({p.style for p in performed})
        excerpts = scatter_training.excerpt_arrays(list(performed) * len(kinds), system, styles,
                                                   FLAGS.max_notes)
        by_style = named_weights(FLAGS.style_accuracy_weight, styles, FLAGS.accuracy_weight,
                                 "style_accuracy_weight")
        palette = (straight_through_palette.tables(palettes.styles, styles) if palettes
                   else None)
    except evaluate.BAD_INPUT as e:  # a velocity_palette.PaletteError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    log(f"{len(performed)} performances, {excerpts.mask.shape[0]} excerpts of up to "
        f"{FLAGS.max_notes} notes; styles {', '.join(styles)}")
    settings = scatter_training.Settings(accuracy_weight=FLAGS.accuracy_weight,
                                         accuracy_by_style=tuple(by_style.values()) if
                                         FLAGS.style_accuracy_weight else (),
                                         balance_styles=FLAGS.balance_styles,
                                         ema_decay=FLAGS.ema_decay,
                                         scorer_reset_every=FLAGS.scorer_reset_every,
                                         width=FLAGS.width,
                                         scorer_width=FLAGS.scorer_width,
                                         scorers=scorers, scorer_weights=scorer_weights,
                                         scorer_columns=columns,
                                         context_notes=FLAGS.context_notes,
                                         statistics_weight=FLAGS.statistics_weight,
                                         palette=palette is not None)
    params, losses = scatter_training.train(excerpts, steps=FLAGS.steps, seed=FLAGS.seed,
                                            settings=settings, progress=log, palette=palette)
    about = {"data": data.removesuffix(", pieces never trained on"),  # the model trained on them
             "system": system_description(FLAGS.system, FLAGS.prior_dir, FLAGS.model),
             "performances": len(performed), "excerpts": int(excerpts.mask.shape[0]),
             "steps": FLAGS.steps, "seed": FLAGS.seed,
             "accuracy_weight": FLAGS.accuracy_weight, "balance_styles": FLAGS.balance_styles,
             **({"accuracy_by_style": by_style} if FLAGS.style_accuracy_weight else {}),
             "ema_decay": FLAGS.ema_decay, "scorer_reset_every": FLAGS.scorer_reset_every,
             "width": FLAGS.width, "scorer_width": FLAGS.scorer_width,
             "scorers": list(scorers),
             **({"scorer_weights": by_kind} if FLAGS.scorer_weight else {}),
             **({"scorer_columns": list(columns)} if columns else {}),
             **({"context_notes": FLAGS.context_notes} if FLAGS.context_notes else {}),
             **({"statistics_weight": FLAGS.statistics_weight} if FLAGS.statistics_weight
                else {}),
             **({"palette": palette_path} if palette_path else {}),
             "final_losses": [round(float(x), 4) for x in losses[-250:].mean(axis=0)],
             "seconds": round(time.perf_counter() - began, 1)}
    command = "python -m experiments.train_scatter " + " ".join(sys.argv[1:])
    learned_scatter.save(FLAGS.out, params, styles, command, about, FLAGS.context_notes)
    print(f"wrote {os.path.relpath(FLAGS.out)}: {FLAGS.steps} steps on {len(performed)} "
          f"performances in {time.perf_counter() - began:.0f} s (scorer loss "
          f"{about['final_losses'][0]:.3f}, network loss {about['final_losses'][1]:.3f})")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
