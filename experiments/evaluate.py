r"""Score StyleNet models and the baselines on human performances, note by note.

    python -m experiments.evaluate --data_dir=DATASET     # its test (else validation) split
    python -m experiments.evaluate --midi_dir=FOLDER      # any folder of performances
    python -m experiments.evaluate --data_dir=DATASET \
        --model=a=runs/a/inference.npz --model=b=runs/b

Each performance's velocities are flattened (``--flat_velocity``), performed by every system,
and compared with the pianist's. Writes ``--out`` (Markdown, with 95% bootstrap intervals over
pieces), ``--out_json`` (``{system: {style: {"notes": n, "mae": x, "pearson_r": x, ...}}}``) and
PNG pictures in ``--plots_dir``. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Sequence

from absl import app, flags, logging

from experiments.systems import DEFAULT_FEATURES, build_systems
from stylenet_jax import dataset, error_breakdown, evaluation, humanize, performances, \
    shuffled_deviations, smf
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.flag_parsing import parse_flags

PAIRED_REFERENCE = "features"  # the system every other is compared with, note for note
FLAGS = flags.FLAGS


def define_performance_flags(used_for: str) -> None:
    """The flags of ``read_performances``: where the human performances come from, for
    ``used_for`` ("scored", "cut into excerpts")."""
    flags.DEFINE_string("data_dir", None, "A dataset built by data_prep.build: its --split is "
                        f"{used_for}, read from the MIDI files it was built from.")
    flags.DEFINE_string("split", None, "Split of --data_dir (default: test, pieces no model "
                        "was trained on, if the dataset has one, else validation).")
    flags.DEFINE_string("midi_root", None, "Where --data_dir's MIDI files are now (default: the "
                        "folder recorded when it was built).")
    flags.DEFINE_string("midi_dir", None, "Instead of --data_dir: a folder of human-performed "
                        "MIDI files, style = first sub-folder (or --files_style).")
    flags.DEFINE_string("files_style", None, "With --midi_dir: the style of every file.")


def _define_flags() -> None:
    define_performance_flags("scored")
    flags.DEFINE_multi_string("model", None, "NAME=PATH of a model to score: an inference "
                              "export (.npz), a training workdir / checkpoint folder, or a tree "
                              "baseline (.pkl, from experiments.feature_baseline). Repeat for "
                              "several. Default: model=the shipped model.")
    flags.DEFINE_string("blend", None, "Perform every file with this style or blend (e.g. "
                        "classical=0.5,jazz=0.5) instead of each file's own style's head.")
    flags.DEFINE_list("baselines", list(evaluation.BASELINES), "Baselines to score beside the "
                      "models: " + ", ".join(evaluation.BASELINES) + " (empty: none).")
    flags.DEFINE_multi_string("mix", [], "NAME=SYSTEM:WEIGHT,SYSTEM:WEIGHT: also score, per "
                              "note, the weighted mean of those systems' velocities (models' "
                              "names or baselines scored in this run; weights scaled to sum "
                              "to 1), e.g. model+tree=model:0.5,features:0.5. Repeatable.")
    flags.DEFINE_multi_string("contrast", [], "NAME=SYSTEM:C: also score that system (or mix) "
                              "with every note's distance from the performance's mean "
                              "velocity times C, as stylize --contrast=C writes it, e.g. "
                              "wide=model:1.5. Repeatable.")
    flags.DEFINE_multi_string("level_shape", [], "NAME=LEVEL_SYSTEM:SHAPE_SYSTEM[:K]: also "
                              "score the second system's velocities moved so that each "
                              "performance's mean is the first's (its dynamics within the "
                              "piece at the other's overall level), e.g. "
                              "tree_level=features:model; with K, the same in every run of K "
                              "consecutive notes (the first's phrase levels, the second's "
                              "shape within them). Repeatable; scored last, after --humanize.")
    flags.DEFINE_multi_string("humanize", [], "NAME=SYSTEM:AMOUNT[@FILE]: also score that "
                              "system with AMOUNT (0..2) times a scatter added, as stylize "
                              "--humanize adds it (see --palette for stylize --palette), "
                              "drawn from FILE (a file or a shipped "
                              "scatter's name; default: --humanize_scatter), e.g. "
                              "model_h100=model:1, model_m100=model:1@mild or model_g75=model:"
                              "0.75@stylenet_jax/assets/humanize.json. Repeatable.")
    define_palette_flag()
    define_per_style_flag()
    flags.DEFINE_multi_string("shuffled_deviations", [], "NAME=SYSTEM[:K]: also score an "
                              "oracle (not a system: it reads the pianist): SYSTEM plus the "
                              "pianist's own deviations from it, shuffled among the notes of "
                              "each performance, or with K only within each run of K "
                              "consecutive notes. What a scatter of exactly the pianist's "
                              "amount costs, e.g. model_dev=model or model_dev16=model:16 "
                              "(stylenet_jax.shuffled_deviations). Repeatable; scored last.")
    flags.DEFINE_string("humanize_scatter", None, "The scatter --humanize draws from: a "
                        f"shipped one by name ({', '.join(humanize.SHIPPED_SCATTERS)}), a "
                        ".json from experiments.fit_humanize, an .npz from "
                        "experiments.train_scatter "
                        "or a .json naming one .npz per style; "
                        "default: learned, stylize --humanize's default.")
    flags.DEFINE_string("train_data_dir", None, "Dataset whose training split gives the "
                        "constant and per-pitch baselines (default: --data_dir, else the "
                        "shipped statistics).")
    define_features_model_flag()
    flags.DEFINE_integer("flat_velocity", 64, "Velocity of every note given to a system.")
    flags.DEFINE_enum("timing", "performed", list(performances.TIMINGS), "When the notes given "
                      "to a system are played: as the pianist played them (performed), or on "
                      "the grid at one steady tempo, as a score gives them (score: no rubato, "
                      "no note early or late; what a musician's sheet-music file holds).")
    define_pedals_flag()
    flags.DEFINE_integer("resamples", 2000, "Bootstrap resamples for the 95% intervals.")
    flags.DEFINE_integer("seed", 0, "Seed of the random baseline and the bootstrap.")
    flags.DEFINE_string("out", "results/evaluation.md", "Markdown report to write.")
    flags.DEFINE_string("out_json", None, "JSON scores (default: --out with .json).")
    flags.DEFINE_string("plots_dir", None, "Folder for the PNGs (default: --out without .md).")
    flags.DEFINE_integer("plot_pieces", 3, "Performances shown over time (one per style first).")
    flags.DEFINE_string("title", "Evaluation on human performances", "The report's title.")
    flags.DEFINE_multi_string("note", [], "A line for the report's notes.")
    flags.DEFINE_bool("progress", True, "Print a line per performance.")
    flags.DEFINE_bool("classifier", True, "Also train the 'identify the human' classifier "
                      "per system (10-second excerpts, half the pieces each side).")
    define_classifier_halves_flag()


def define_features_model_flag() -> None:
    """``--features_model``, for every app that runs the tree baseline or a hybrid model."""
    flags.DEFINE_string("features_model", DEFAULT_FEATURES, "The tree baseline's saved model "
                        "(also what a hybrid model, --tree_prior_dir in training, reads).")


def define_pedals_flag() -> None:
    """``--pedals``, for every app whose systems perform the pianists' files."""
    flags.DEFINE_bool("pedals", True, "Tell the systems the pianist's sustain and soft pedals "
                      "under each note, as the file holds them (only a tree fitted with "
                      "--pedals reads them); --nopedals hides them, as a sheet-music file "
                      "rarely holds them.")


def define_per_style_flag() -> None:
    """``--per_style``, for every app that builds its systems with ``build_systems``."""
    flags.DEFINE_multi_string("per_style", [], "NAME=STYLE:SYSTEM,STYLE:SYSTEM: also score, "
                              "as one system, each performance as the system named for its "
                              "style plays it (settings chosen per style, as a musician uses "
                              "stylize, one style a file), e.g. wide=classical:c14,jazz:c15,"
                              "pop:model. Repeatable; scored after every other system.")


def define_palette_flag() -> None:
    """``--palette``, for every app that builds its systems with ``build_systems``."""
    flags.DEFINE_multi_string("palette", [], "NAME=SYSTEM[@FILE]: also score that system's "
                              "velocities played on its style's velocity palette, as stylize "
                              "--humanize --palette plays its draw (FILE: a palette from "
                              "experiments.fit_palette; default: the shipped one), e.g. "
                              "model_h110p=model_h110. Repeatable; scored after --humanize.")


def define_classifier_halves_flag() -> None:
    """``--classifier_both_halves``, for every app that trains the identify-the-human
    classifier (``evaluation.identify_the_human``)."""
    flags.DEFINE_bool("classifier_both_halves", False, "Train the classifier on each half "
                      "of the pieces in turn and score every piece with the one that did "
                      "not see it: twice the test pieces (tighter intervals), twice the time.")


def systems_from_flags(train_data_dir: str | None) -> tuple[list, dict[str, str]]:
    """The systems to score and a line describing each (``build_systems`` of the flags)."""
    return build_systems(FLAGS.model, FLAGS.baselines, blend_spec=FLAGS.blend,
                         features_model=FLAGS.features_model, train_data_dir=train_data_dir,
                         seed=FLAGS.seed, mix_specs=FLAGS.mix,
                         contrast_specs=FLAGS.contrast, level_shape_specs=FLAGS.level_shape,
                         humanize_specs=FLAGS.humanize, humanize_scatter=FLAGS.humanize_scatter,
                         palette_specs=FLAGS.palette, per_style_specs=FLAGS.per_style)


def load_performances() -> tuple[list[performances.Performed], str]:
    """``read_performances`` of the flags."""
    return read_performances(FLAGS.data_dir, FLAGS.midi_dir, split=FLAGS.split,
                             midi_root=FLAGS.midi_root, files_style=FLAGS.files_style)


def read_performances(data_dir: str | None, midi_dir: str | None, *, split: str | None = None,
                      midi_root: str | None = None, files_style: str | None = None
                      ) -> tuple[list[performances.Performed], str]:
    """The human performances to judge (a built dataset's split, default test if it has one,
    else validation; or a folder of MIDI files) and a line saying what they are."""
    if bool(data_dir) == bool(midi_dir):
        raise ValueError("give exactly one of --data_dir and --midi_dir")
    if midi_dir:
        found = performances.from_folder(midi_dir, files_style,
                                         log=lambda line: print(line, file=sys.stderr))
        return found, f"the MIDI files below `{midi_dir}`"
    manifest = dataset.read_manifest(data_dir)
    split = split or ("test" if any(s["split"] == "test" for s in manifest["songs"])
                      else "validation")
    found = performances.from_dataset(data_dir, split, midi_root)
    options = manifest.get("options", {})
    return found, (f"the `{split}` split of `{data_dir}` (built from `"
                   f"{manifest.get('source')}` with {json.dumps(options)})"
                   + ("" if split == "train" else ", pieces never trained on"))


# What reading performances and building systems raise for bad input: one line, status 2.
BAD_INPUT = (ValueError, OSError, KeyError, dataset.DatasetError, smf.MidiError)


def progress_printer(enabled: bool) -> Callable[[str], None]:
    """Prints each progress line to stderr at once, or, not ``enabled``, drops it."""
    if not enabled:
        return lambda line: None
    return lambda line: print(line, file=sys.stderr, flush=True)


def start_app(argv: Sequence[str]) -> float:
    """The start of a scoring app's ``main``: refuses arguments left after the flags, quiets
    JAX's backend probing (not for a report), and returns the start time
    (``time.perf_counter()``)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    return time.perf_counter()


def main(argv: Sequence[str]) -> None:
    began = start_app(argv)
    try:
        performed, data = load_performances()
        systems, described = systems_from_flags(FLAGS.train_data_dir or FLAGS.data_dir)
        evaluation.check_styles(performed, systems)
        oracles = []
        for spec in FLAGS.shuffled_deviations:
            oracles.append(shuffled_deviations.parse(spec, list(described)))
            described[oracles[-1].name] = oracles[-1].description
    except BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    log = progress_printer(FLAGS.progress)
    result = evaluation.evaluate(performed, systems, flat_velocity=FLAGS.flat_velocity,
                                 timing=FLAGS.timing, pedals=FLAGS.pedals, progress=log)
    result = shuffled_deviations.add(result, performed, oracles, seed=FLAGS.seed)
    scores = evaluation.scores(result, resamples=FLAGS.resamples, seed=FLAGS.seed)
    paired = (evaluation.paired_differences(result, PAIRED_REFERENCE, resamples=FLAGS.resamples,
                                            seed=FLAGS.seed)
              if PAIRED_REFERENCE in described and len(described) > 1 else None)
    identified = {}
    if FLAGS.classifier:
        log("training the identify-the-human classifier per system")
        identified = evaluation.identify_the_human(performed, result, seed=FLAGS.seed,
                                                   both_halves=FLAGS.classifier_both_halves)
        for name, row in identified.items():
            for style, by_style in [("all", row), *row["by_style"].items()]:
                scores[name][style].update({f"classifier_{k}": v for k, v in by_style.items()
                                            if k != "by_style"})
    from experiments import evaluation_figures, evaluation_report

    breakdown = error_breakdown.breakdown(performed, result.velocities)
    for name, by_style in breakdown.items():
        for style, row in by_style.items():
            scores[name][style]["breakdown"] = row

    out_json = FLAGS.out_json or os.path.splitext(FLAGS.out)[0] + ".json"
    plots_dir = FLAGS.plots_dir or os.path.splitext(FLAGS.out)[0]
    pictures = evaluation_figures.write_all(plots_dir, performed, result, list(described),
                                            FLAGS.plot_pieces, relative_to=os.path.dirname(
                                                os.path.abspath(FLAGS.out)), scores=scores)
    command = "python -m experiments.evaluate " + " ".join(sys.argv[1:])
    text = evaluation_report.render(scores, title=FLAGS.title, command=command, data=data,
                                    systems_described=described, pictures=pictures,
                                    seconds=time.perf_counter() - began, notes=FLAGS.note,
                                    resamples=FLAGS.resamples, identified=identified,
                                    timing=FLAGS.timing, pedals=FLAGS.pedals, paired=paired,
                                    paired_reference=PAIRED_REFERENCE,
                                    breakdown=breakdown,
                                    both_halves=FLAGS.classifier_both_halves)
    for path, body in ((FLAGS.out, text), (out_json, json.dumps(scores, indent=1))):
        write_text_atomically(path, body + "\n")
    print(f"wrote {FLAGS.out}, {out_json} and {len(pictures)} picture(s) in {plots_dir}")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
