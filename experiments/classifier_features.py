r"""What gives a system away: the identify-the-human classifier retrained with some of its
features hidden (``results/classifier_features.md``).

    python -m experiments.classifier_features --data_dir=runs/data/heldout
    python -m experiments.classifier_features --data_dir=DATASET --model=m=runs/a \
        --baselines=features --contrast=wide=m:1.4 --out=runs/classifier_features.md

``experiments.evaluate`` reports one number per system: how often the classifier
(``stylenet_jax.human_classifier``; 10-second excerpts, trained on half of the pieces, scored
on the other half) picks the pianist's velocities over the system's on the same notes. This
command asks which of its per-note features carry that verdict. For every system it trains
the classifier again under each condition of ``CONDITIONS``: every feature; every feature but
one velocity feature; one velocity feature with the notes' context; one velocity feature
alone. Hidden features are zero columns (``human_classifier.feature_mask``); the pairs, the
split and the seed are the same in every condition, so the accuracies differ only by what the
classifier may see. Writes the Markdown table, its JSON and a bar chart; bad input prints
one line on stderr and exits with status 2.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import excerpt_judging
from experiments.evaluate import progress_printer, start_app
from stylenet_jax import evaluation, human_classifier, judges, statistics_judge
from stylenet_jax.evaluation_plots import plot_grouped_bars
from stylenet_jax.flag_parsing import parse_flags

FLAGS = flags.FLAGS
VELOCITY = tuple(n for n in human_classifier.FEATURE_NAMES if n.startswith("velocity"))
CONTEXT = tuple(n for n in human_classifier.FEATURE_NAMES if n not in VELOCITY)
CONDITIONS: dict[str, tuple[str, ...]] = {
    "every feature": human_classifier.FEATURE_NAMES,
    **{f"all but {v}": tuple(n for n in human_classifier.FEATURE_NAMES if n != v)
       for v in VELOCITY},
    **{f"{v} + context": (v,) + CONTEXT for v in VELOCITY},
    **{f"{v} alone": (v,) for v in VELOCITY},
}
# Judges the learned scatter never trained against, on the same pairs as the conditions.
JUDGES = tuple(judges.DESCRIPTIONS[name] for name in ("wider", "trees"))


def _chord_deviation(pair: human_classifier.Pair, velocity: np.ndarray) -> float:
    """Mean |velocity - its chord's mean velocity| (the classifier's own feature, in MIDI
    units)."""
    features = human_classifier.note_features(pair.notes, pair.ticks_per_beat, pair.seconds,
                                              velocity)
    column = human_classifier.FEATURE_NAMES.index("velocity_minus_chord_mean")
    return float(np.abs(features[:, column]).mean() * 127)


def _soft_tail(pair: human_classifier.Pair, velocity: np.ndarray) -> float:
    """Minus the skewness: larger where a few notes fall far below the rest."""
    sd = velocity.std()
    return float(-((velocity - velocity.mean()) ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def _lag1(pair: human_classifier.Pair, velocity: np.ndarray) -> float:
    """Correlation of each note's velocity with the next one's (0 for a constant excerpt)."""
    return statistics_judge.correlation(velocity[:-1], velocity[1:])


# One-line rules: "the version with the larger statistic is the pianist's" (no training).
RULES = {
    "larger velocity sd": lambda pair, v: float(v.std()),
    "wider range (max - min)": lambda pair, v: float(v.max() - v.min()),
    "lower softest note": lambda pair, v: float(-v.min()),
    "longer soft tail (more negative skew)": _soft_tail,
    "more distinct velocities": lambda pair, v: float(len(np.unique(v))),
    "larger mean |step| between successive notes": lambda pair, v: float(
        np.abs(np.diff(v)).mean()),
    "larger lag-1 correlation (smoother note to note)": _lag1,
    "larger mean |velocity - its chord's mean|": _chord_deviation,
}


def rule_accuracy(pairs: Sequence[human_classifier.Pair], statistic) -> float:
    """How often ``statistic(pair, velocities float64 (n,))`` is larger for the pianist's
    version than for the system's (ties count half)."""
    human = np.array([statistic(p, p.human.astype(np.float64)) for p in pairs])
    system = np.array([statistic(p, p.system.astype(np.float64)) for p in pairs])
    return float(np.mean(np.where(np.isclose(human, system), 0.5, human > system)))


def _define_flags() -> None:
    excerpt_judging.define_flags("results/classifier_features.md", "condition")


def ablate(performed: Sequence, velocities: Sequence, *, excerpt_seconds: float, seed: int,
           steps: int = judges.EXCERPT_STEPS, log=lambda line: None) -> dict[str, dict]:
    """{condition: {"accuracy", "lo", "hi", "features", "pairs", "pieces"}} for one system's
    ``velocities`` (int (n,) per performance of ``performed``): the classifier trained for
    ``steps`` and scored on the same pairs under every ``CONDITIONS`` entry; {rule:
    {"accuracy"}} for each of ``RULES`` on the same test pairs; and each of ``JUDGES``
    trained and scored on the same pairs (accuracy, lo, hi, pairs, pieces)."""
    pairs = human_classifier.make_pairs(performed, velocities, excerpt_seconds)
    train, test = human_classifier.split_pieces(pairs, 0.5, seed)
    out = {rule: {"accuracy": rule_accuracy(test, statistic)}
           for rule, statistic in RULES.items()}
    def record(name: str, result: dict, **extra) -> None:
        lo, hi = result["ci95"]
        out[name] = {"accuracy": result["accuracy"], "lo": float(lo), "hi": float(hi),
                     **extra, "pairs": result["pairs"], "pieces": result["pieces"]}
        log(f"  {name}: {_cell(out[name])}")

    for condition, features in CONDITIONS.items():
        record(condition, human_classifier.train_and_score(
            train, test, steps=steps, batch_size=judges.EXCERPT_BATCH, seed=seed,
            features=features),
            features=list(features))
    for name, description in zip(("wider", "trees"), JUDGES):
        record(description, judges.trainer(name, steps)(train, test, seed=seed))
    return out


def _cell(row: dict) -> str:
    """A row's accuracy with its interval, as the report and the progress lines show it."""
    return f"{row['accuracy']:.3f} [{row['lo']:.3f}, {row['hi']:.3f}]"


def render(results: dict[str, dict[str, dict]], *, command: str, data: str,
           described: dict[str, str], seconds: float, picture: str,
           excerpt_seconds: float) -> str:
    """The Markdown report: one row per condition, one column per system."""
    names = list(results)
    first = next(iter(results.values()))["every feature"]
    lines = [
        "# What gives a system away", "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{seconds:.0f} s wall.", "",
        f"Data: {data}; {first['pairs']} test excerpt pairs of {first['pieces']} pieces per "
        "system.", "",
        "How often the identify-the-human classifier (`stylenet_jax.human_classifier`, "
        f"{excerpt_seconds:g}-second excerpts, trained on half of the pieces, scored on "
        "the other half) picks the pianist's velocities over the system's on the same notes, "
        "when it may see only some of its per-note features (the others are zero columns). "
        "0.5 is chance; in brackets, 95% intervals by bootstrap over the test pieces. The "
        f"velocity features: {', '.join(f'`{v}`' for v in VELOCITY)}; the context: "
        f"{', '.join(f'`{c}`' for c in CONTEXT)}.", "",
        "| classifier sees | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---" * (len(names) + 1) + "|"]
    for condition in CONDITIONS:
        lines.append(f"| {condition} | " + " | ".join(_cell(results[n][condition])
                                                      for n in names) + " |")
    lines += ["", "No classifier at all: the share of the same test pairs in which a one-line "
              "rule on the excerpt's velocities picks the pianist's version (ties count "
              "half).", "",
              "| rule: pick as the pianist's the version with the | "
              + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|",
              *["| " + rule.replace("|", "\\|") + " | "  # a | inside a cell ends it
                + " | ".join(f"{results[n][rule]['accuracy']:.3f}" for n in names) + " |"
                for rule in RULES]]
    lines += ["", "Judges the learned scatter never trained against (it plays against this "
              f"classifier's kind at {human_classifier.WIDTH} channels), on the same "
              "pairs: the same classifier "
              "wider and trained longer, and gradient-boosted trees (scikit-learn) on the "
              "difference of the two versions' summary statistics "
              "(`stylenet_jax.statistics_judge`).", "",
              "| judge | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---" * (len(names) + 1) + "|",
              *[f"| {judge} | " + " | ".join(_cell(results[n][judge]) for n in names) + " |"
                for judge in JUDGES]]
    lines += ["", "Systems:", "", *[f"- `{n}`: {described[n]}" for n in names], "",
              f"![accuracy by condition]({picture})", ""]
    return "\n".join(lines)


def plot(path: str, results: dict[str, dict[str, dict]]) -> str:
    """A horizontal bar per condition and system, with its interval; writes ``path``."""
    conditions = list(CONDITIONS)
    series = {}
    for name, by_condition in results.items():
        rows = [by_condition[c] for c in conditions]
        accuracy = np.array([r["accuracy"] for r in rows])
        series[name] = (accuracy, np.array([accuracy - [r["lo"] for r in rows],
                                            [r["hi"] for r in rows] - accuracy]))
    return plot_grouped_bars(path, conditions, series, xlabel="pianist picked (0.5 = chance)",
                             reference=0.5, reference_style=":", xlim=(0.4, 1.0), width=8.0,
                             row_height=0.45, fontsize=7)


def main(argv: Sequence[str]) -> None:
    began = start_app(argv)
    performed, data, systems, described = excerpt_judging.read_or_exit()
    log = progress_printer(FLAGS.progress)
    played = evaluation.evaluate(performed, systems, progress=log)
    results = {}
    for name, velocities in played.velocities.items():
        log(f"{name}: {len(CONDITIONS)} classifiers")
        results[name] = ablate(performed, velocities, excerpt_seconds=FLAGS.excerpt_seconds,
                               seed=FLAGS.seed, log=log)
    excerpt_judging.write_report(results, "experiments.classifier_features", began, render,
                                 plot, data=data, described=described,
                                 excerpt_seconds=FLAGS.excerpt_seconds)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
