r"""Another pianist of the same piece, scored as a system beside the models and baselines.

    python -m experiments.second_pianist --data_dir=/tmp/heldout          # its test split
    python -m experiments.second_pianist --data_dir=/tmp/heldout --humanize=model_h75=model:0.75
    python -m experiments.second_pianist --data_dir=/tmp/heldout --at_other_phrases=phrased=model

For every piece of the split with two or more performances, each ordered pair (A the pianist,
B another pianist) is scored on the notes both play on the same 1/16 step with the same key
(``stylenet_jax.second_pianist``): B's velocities, and every system's performance of A
(flattened, as ``experiments.evaluate`` performs it), against A's. Writes ``--out`` (Markdown:
MAE, r and spread with 95% bootstrap intervals over pieces, each system minus another pianist,
paired; each one's level and shape, as in ``experiments.evaluate``'s "Level or shape"; and how
often the identify-the-human classifier tells the pianist from each version), with its JSON
and a picture of one pair's phrase levels (PNG) beside it. Bad input: one line on stderr, exit
status 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

from absl import app, flags

from experiments import evaluate, evaluation_report, second_pianist_figure
from stylenet_jax import error_breakdown, evaluation, metrics, second_pianist
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.flag_parsing import parse_flags

FLAGS = flags.FLAGS
OTHER = second_pianist.ANOTHER_PIANIST


def _define_flags() -> None:
    evaluate.define_performance_flags("compared")
    flags.DEFINE_multi_string("model", None, "NAME=PATH of a model to score beside another "
                              "pianist (default: model=the shipped model). Repeatable.")
    flags.DEFINE_list("baselines", ["features"], "Baselines to score too: "
                      + ", ".join(evaluation.BASELINES) + " (empty: none).")
    evaluate.define_features_model_flag()
    flags.DEFINE_multi_string("contrast", [], "NAME=SYSTEM:C, as in experiments.evaluate.")
    flags.DEFINE_multi_string("humanize", [], "NAME=SYSTEM:AMOUNT, as in "
                              "experiments.evaluate.")
    flags.DEFINE_multi_string("at_other_phrases", [], "NAME=SYSTEM: also score an oracle, "
                              "SYSTEM's shape within each phrase of "
                              f"{error_breakdown.PHRASE_NOTES} shared notes at the levels "
                              "another pianist gave the phrases. Repeatable.")
    flags.DEFINE_list("plot_systems", ["model", "features"], "Versions to draw beside the "
                      "pianist and another pianist in the picture of phrase levels (those "
                      "not scored are left out).")
    flags.DEFINE_integer("tolerance", 0, "Also match the same key struck up to this many "
                         "1/16 steps apart (rubato moves notes across the grid); 0: the same "
                         "step only.", lower_bound=0)
    evaluate.define_pedals_flag()  # A's pedals, as A's file holds them
    flags.DEFINE_integer("resamples", 2000, "Bootstrap resamples for the 95% intervals.")
    flags.DEFINE_integer("seed", 0, "Seed of the bootstrap, a random baseline and --humanize.")
    flags.DEFINE_string("out", "results/second_pianist.md", "Markdown report to write (JSON "
                        "beside it).")
    flags.DEFINE_bool("classifier", True, "Also train the identify-the-human classifier "
                      "(as experiments.evaluate) on each version of the shared notes: can it "
                      "tell the pianist from another pianist?")
    evaluate.define_classifier_halves_flag()
    flags.DEFINE_bool("progress", True, "Print a line per performance.")


def _cell(row: dict, name: str, digits: int) -> str:
    return (f"{row[name]:.{digits}f} [{row[f'{name}_lo']:.{digits}f}, "
            f"{row[f'{name}_hi']:.{digits}f}]")


def _signed(row: dict, name: str, digits: int) -> str:
    return (f"{row[name]:+.{digits}f} [{row[f'{name}_lo']:+.{digits}f}, "
            f"{row[f'{name}_hi']:+.{digits}f}]")


def render(scores: dict, paired: dict, counts: dict, *, command: str, data: str,
           described: dict[str, str], seconds: float, identified: dict | None = None,
           tolerance: int = 0, both_halves: bool = False, pedals: bool = True,
           breakdown: dict | None = None, picture: str | None = None) -> str:
    """The report's Markdown."""
    where = ("on the same 1/16 step" if not tolerance else
             f"on the same 1/16 step or up to {tolerance} step(s) apart, the nearest first")
    lines = [
        "# Another pianist, scored as a system", "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{seconds:.0f} s wall.", "", f"Data: {data}.", "",
        f"{counts['pieces']} pieces with two or more performances, {counts['pairs']} ordered "
        f"pairs of performances (A the pianist, B another), {counts['shared_notes']:,} notes "
        f"scored: the notes A and B both play with the same key {where}, "
        f"{counts['shared_share']:.0%} of A's. On those notes, `{OTHER}` is B's velocities; "
        "each system performs A's notes with their velocities flattened, as in "
        "`experiments.evaluate`, told of "
        + ("A's pedals where A's file holds them. " if pedals else "no pedal (--nopedals). ")
        + "MIDI velocity units; 95% intervals by bootstrap over pieces "
        f"(`{OTHER}`'s spread ratio is 1: each pair is scored both ways). "
        "Δ: the system minus another pianist on the same notes (paired), bold where the "
        "interval excludes 0.", "", "Systems:", "",
        f"- `{OTHER}`: another pianist's performance of the same piece",
        *[f"- `{name}`: {text}" for name, text in described.items()], ""]
    for style in [s for s in scores[OTHER] if s != "all"] + (["all"] if len(scores[OTHER]) > 2
                                                             else []):
        lines += [f"## {style}", "", "| system | MAE | Pearson r | spread ratio | Δ MAE | Δ r |",
                  "|---|---|---|---|---|---|"]
        for name, by_style in scores.items():
            row = by_style[style]
            delta = paired.get(name, {}).get(style)
            diffs = ["-", "-"] if delta is None else [
                (f"**{c}**" if (delta[f"{m}_lo"] > 0 or delta[f"{m}_hi"] < 0) else c)
                for m, c in (("mae", _signed(delta, "mae", 2)),
                             ("pearson_r", _signed(delta, "pearson_r", 3)))]
            lines.append(f"| {name} | {_cell(row, 'mae', 2)} | {_cell(row, 'pearson_r', 3)} | "
                         f"{_cell(row, 'std_ratio', 2)} | {diffs[0]} | {diffs[1]} |")
        lines.append("")
    if breakdown:
        styles = [s for s in scores[OTHER] if s != "all"]
        lines += evaluation_report.level_or_shape_section(
            breakdown, list(scores), styles, preamble=(
                "Each ordered pair is a performance here: A's shared notes, so a level is "
                "their mean, and a phrase run is "
                f"{error_breakdown.PHRASE_NOTES} consecutive shared notes."))
    if picture:
        lines += [f"![Phrase levels of the pair with the most shared notes: the pianist, "
                  f"another pianist and the systems]({picture})", ""]
    if identified:
        lines += ["## Identify the human", "",
                  "The identify-the-human classifier of `experiments.evaluate`, on 10-second "
                  "excerpts of the shared notes; it is trained "
                  f"{evaluation_report.classifier_split(both_halves)}. How often it picks the "
                  "pianist over each version: 0.5 is chance; in brackets, 95% intervals by "
                  "bootstrap over the test pieces.", "",
                  "| version | pianist identified | test pairs | test pieces |",
                  "|---|---|---|---|",
                  *[f"| {name} | {r['accuracy']:.3f} [{r['accuracy_lo']:.3f}, "
                    f"{r['accuracy_hi']:.3f}] | {r['pairs']} | {r['pieces']} |"
                    for name, r in identified.items()], ""]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    began = evaluate.start_app(argv)
    try:
        performed, data = evaluate.load_performances()
        performed = second_pianist.with_others(performed)  # no system runs on the rest
        systems, described = evaluate.build_systems(
            FLAGS.model, FLAGS.baselines, features_model=FLAGS.features_model, seed=FLAGS.seed,
            contrast_specs=FLAGS.contrast, humanize_specs=FLAGS.humanize)
        if OTHER in described:
            raise ValueError(f"{OTHER!r} is the other pianist's name: name the system "
                             "otherwise")
        oracles = [second_pianist.parse_at_other_phrases(spec, list(described))
                   for spec in FLAGS.at_other_phrases]
        if len(dict(oracles)) < len(oracles):
            raise ValueError("--at_other_phrases: each NAME once")
        evaluation.check_styles(performed, systems)
        if not second_pianist.shared_pairs(performed, {}, tolerance=FLAGS.tolerance):
            raise ValueError("no piece has two performances that share notes (on the same "
                             "step, with the same key)")
    except evaluate.BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    result = evaluation.evaluate(performed, systems, pedals=FLAGS.pedals,
                                 progress=evaluate.progress_printer(FLAGS.progress))
    pairs = second_pianist.shared_pairs(performed, result.velocities,
                                        tolerance=FLAGS.tolerance)
    for name, system in oracles:
        pairs = second_pianist.at_other_phrases(pairs, system, name)
        described[name] = (f"oracle, not a system: {system}'s shape within each phrase of "
                           f"{error_breakdown.PHRASE_NOTES} shared notes, at the levels another "
                           "pianist gave the phrases")
    compared, counts = second_pianist.comparisons(pairs)
    breakdown = second_pianist.level_and_shape(pairs)
    identified = {}
    if FLAGS.classifier and counts["pieces"] < 2:
        print("note: the classifier needs two pieces (half train it, half score it); skipped",
              file=sys.stderr)
    elif FLAGS.classifier:
        print("training the identify-the-human classifier per system", file=sys.stderr)
        versions = {name: [p.versions[name] for p in pairs] for name in compared}
        identified = evaluation.identify_the_human([p.pianist for p in pairs],
                                                   evaluation.Evaluation({}, versions),
                                                   seed=FLAGS.seed,
                                                   both_halves=FLAGS.classifier_both_halves)
    scores = {name: metrics.score_by_style(by_style, resamples=FLAGS.resamples,
                                           seed=FLAGS.seed)
              for name, by_style in compared.items()}
    paired = evaluation.paired_differences(evaluation.Evaluation(compared, {}), OTHER,
                                           resamples=FLAGS.resamples, seed=FLAGS.seed)
    out_json = os.path.splitext(FLAGS.out)[0] + ".json"
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    picture = second_pianist_figure.plot(os.path.splitext(FLAGS.out)[0] + ".png", pairs,
                                         FLAGS.plot_systems)
    command = "python -m experiments.second_pianist " + " ".join(sys.argv[1:])
    text = render(scores, paired, counts, command=command, data=data, described=described,
                  seconds=time.perf_counter() - began, identified=identified,
                  tolerance=FLAGS.tolerance, pedals=FLAGS.pedals,
                  both_halves=FLAGS.classifier_both_halves, breakdown=breakdown,
                  picture=picture and os.path.relpath(
                      picture, os.path.dirname(os.path.abspath(FLAGS.out))))
    for path, body in ((FLAGS.out, text), (out_json, json.dumps(
            {"counts": counts, "scores": scores, "paired": paired, "breakdown": breakdown,
             "identified": identified},
            indent=1))):
        write_text_atomically(path, body + "\n")
    print(f"wrote {FLAGS.out}, {out_json}" + (f" and {picture}" if picture else ""))


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
