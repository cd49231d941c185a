r"""What a bigger ensemble of one recipe buys: ensembles of its first K runs, against the tree.

    python -m experiments.ensemble_size --data_dir=DATA --split=validation \
        --member='absolute=runs/seeds/abs*.npz' --member='squared=runs/seeds/sq*.npz' \
        --sizes=1,3,9 --out=results/ensemble_size.md

Each ``--member`` is RECIPE=PATH: one model (an inference export or a training run
directory), or a glob of them, taken in natural order (seed 2 before seed 10). For each
recipe and each K of ``--sizes`` (and the recipe's full count), the ensemble of its first K
models plays every performance of the split, flattened as ``experiments.evaluate`` gives it:
each note's velocity is round(127 x the mean of the K models' outputs), what an
``experiments.ensemble`` file of them plays. Every model runs once per performance, and the
tree's velocities that hybrid models read are computed once per performance.

Writes ``--out`` (Markdown: per style, each ensemble's MAE, r and spread, and its paired
difference from the tree baseline with 95% bootstrap intervals over pieces), its JSON and a
picture of MAE and r against K beside it. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import evaluate
from stylenet_jax import encoding, evaluation, metrics, performances
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.flag_parsing import parse_flags

FLAGS = flags.FLAGS
TREE = "features"  # the tree baseline's system name (evaluation.FeaturesSystem)


def _define_flags() -> None:
    evaluate.define_performance_flags("scored")
    flags.DEFINE_multi_string("member", [], "RECIPE=PATH: a model of that recipe (an "
                              "inference export or a training run directory) or a glob of "
                              "them, taken in natural order. Repeatable; a recipe's models "
                              "are joined in the order given.")
    flags.DEFINE_list("sizes", ["1", "3"], "Ensemble sizes K to score for every recipe (its "
                      "first K models); each recipe's full count is always scored too.")
    evaluate.define_features_model_flag()
    flags.DEFINE_integer("resamples", 2000, "Bootstrap resamples for the 95% intervals.")
    flags.DEFINE_integer("seed", 0, "Seed of the bootstrap.")
    flags.DEFINE_string("out", "results/ensemble_size.md", "Markdown report to write (JSON "
                        "and PNG beside it).")
    flags.DEFINE_bool("progress", True, "Print a line per performance.")


def natural_key(path: str) -> list:
    """Sort key that orders the numbers inside names by value (``run2`` before ``run10``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def parse_members(specs: Sequence[str]) -> dict[str, list[str]]:
    """``RECIPE=PATH_OR_GLOB`` specs -> {recipe: [path, ...]} in the order given (a glob's
    matches in natural order). Raises ValueError (one line) for a bad spec, a glob that
    matches nothing, or a path given twice."""
    recipes: dict[str, list[str]] = {}
    for spec in specs:
        recipe, sep, pattern = spec.partition("=")
        if not sep or not recipe or not pattern:
            raise ValueError(f"--member {spec!r}: expected RECIPE=PATH (a glob may match "
                             "several)")
        paths = (sorted(glob.glob(pattern), key=natural_key) if glob.has_magic(pattern)
                 else [pattern])
        if not paths or not all(os.path.exists(p) for p in paths):
            raise ValueError(f"--member {spec!r}: no such model")
        recipes.setdefault(recipe, []).extend(paths)
    every = [p for paths in recipes.values() for p in paths]
    if len(set(every)) != len(every):
        raise ValueError("a model is given twice")
    return recipes


def sizes_of(asked: Sequence[int], count: int) -> list[int]:
    """The ensemble sizes scored for a recipe of ``count`` models: those of ``asked`` up to
    ``count``, and ``count`` itself, ascending."""
    return sorted({k for k in asked if 1 <= k <= count} | {count})


def note_values(performance: evaluation.Performance, performed: performances.Performed
                ) -> np.ndarray:
    """float32 (n,): a model's output in [0, 1] at each note's onset cell, before rounding
    (``encoding.velocities_at`` rounds 127 times it)."""
    onset, _ = encoding.quantize(performed.notes, performed.ticks_per_beat)
    keys = np.asarray(performed.notes.pitch).astype(np.int64) - encoding.LOWEST_KEY
    return np.asarray(performance.matrix, np.float32)[onset, keys]


def ensemble_velocities(values: np.ndarray, k: int) -> np.ndarray:
    """int64 (n,): the velocities of the ensemble of the first ``k`` models, from ``values``
    float (models, n), each model's ``note_values``."""
    return np.clip(np.rint(127.0 * values[:k].astype(np.float64).mean(axis=0)), 1,
                   127).astype(np.int64)


def perform_models(performed: Sequence[performances.Performed], stylizers: Sequence,
                   tree: evaluation.FeaturesSystem, progress) -> tuple[list, list]:
    """Every model's ``note_values`` and the tree's velocities for every (flattened)
    performance: (per performance float32 (models, n), per performance int64 (n,)). The
    tree's velocities that hybrid models read are made once per performance for them all."""
    models = [evaluation.ModelSystem(stylizer) for stylizer in stylizers]
    hybrid = next((m for m in models if m.stylizer.tree is not None), None)
    values, tree_velocities = [], []
    for i, human in enumerate(performed, 1):
        given = evaluation.flatten(human)
        priors = hybrid.tree_priors(given) if hybrid is not None else None
        values.append(np.stack([note_values(model.perform(given, priors), given)
                                for model in models]))
        tree_velocities.append(np.asarray(tree.perform(given).velocities, np.int64))
        progress(f"[{i}/{len(performed)}] {human.id} ({len(given.notes)} notes)")
    return values, tree_velocities


def comparisons_of(performed: Sequence[performances.Performed],
                   velocities: Sequence[np.ndarray]) -> dict[str, list]:
    """{style: [metrics.PieceComparison]} of one system's velocities (notes only)."""
    out: dict[str, list] = {}
    for human, v in zip(performed, velocities):
        out.setdefault(human.style, []).append(metrics.PieceComparison(
            human.piece, human.notes.velocity.astype(np.int64), v))
    return out


def system_name(recipe: str, k: int) -> str:
    """The report's name of the ensemble of a recipe's first ``k`` models."""
    return f"{recipe} x{k}"


def score(performed: Sequence[performances.Performed], recipes: dict[str, list[str]],
          sizes: Sequence[int], values: Sequence[np.ndarray], tree: Sequence[np.ndarray], *,
          resamples: int, seed: int) -> tuple[dict, dict, dict[str, list[int]]]:
    """Scores of the tree and of every recipe's ensembles: ({system: {style: metrics.score}},
    {system: {style: paired difference from the tree}}, {recipe: sizes scored}). ``values``:
    per performance float (models, n), the models in the recipes' order."""
    compared = {TREE: comparisons_of(performed, tree)}
    scored_sizes, first = {}, 0
    for recipe, paths in recipes.items():
        scored_sizes[recipe] = sizes_of(sizes, len(paths))
        for k in scored_sizes[recipe]:
            compared[system_name(recipe, k)] = comparisons_of(
                performed, [ensemble_velocities(v[first:first + len(paths)], k)
                            for v in values])
        first += len(paths)
    scores = {name: metrics.score_by_style(by_style, resamples=resamples, seed=seed)
              for name, by_style in compared.items()}
    paired = evaluation.paired_differences(evaluation.Evaluation(compared, {}), TREE,
                                           resamples=resamples, seed=seed)
    return scores, paired, scored_sizes


def _interval(row: dict, name: str, digits: int, signed: bool = False) -> str:
    sign = "+" if signed else ""
    text = (f"{row[name]:{sign}.{digits}f} [{row[f'{name}_lo']:{sign}.{digits}f}, "
            f"{row[f'{name}_hi']:{sign}.{digits}f}]")
    excludes_zero = signed and (row[f"{name}_lo"] > 0 or row[f"{name}_hi"] < 0)
    return f"**{text}**" if excludes_zero else text


def render(scores: dict, paired: dict, recipes: dict[str, list[str]], *, command: str,
           data: str, seconds: float, picture: str) -> str:
    """The report's Markdown."""
    styles = [s for s in scores[TREE] if s != "all"]
    lines = [
        "# Ensembles of growing size", "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{seconds:.0f} s wall.", "", f"Data: {data}.", "",
        "Each ensemble `RECIPE xK` is the mean of that recipe's first K models (below), "
        "what an `experiments.ensemble` file of them plays; every performance's velocities "
        "were flattened before it played them. MIDI velocity units, notes pooled per style; "
        "95% intervals by bootstrap over pieces. Δ: the ensemble minus the tree baseline "
        f"(`{TREE}`) on the same notes, paired; bold where the interval excludes 0.", "",
        "Models, in order:", ""]
    for recipe, paths in recipes.items():
        lines.append(f"- `{recipe}` ({len(paths)}): "
                     + ", ".join(f"`{os.path.relpath(p)}`" for p in paths))
    lines += ["", f"![MAE and r against the ensemble's size]({os.path.basename(picture)})", ""]
    for style in styles:
        tree = scores[TREE][style]
        lines += [f"## {style}", "",
                  f"{tree['performances']} performances of {tree['pieces']} pieces, "
                  f"{tree['notes']:,} notes.", "",
                  "| system | MAE | Pearson r | spread ratio | Δ MAE | Δ r |",
                  "|---|---|---|---|---|---|"]
        for name, by_style in scores.items():
            row, delta = by_style[style], paired.get(name, {}).get(style)
            diffs = (["-", "-"] if delta is None else
                     [_interval(delta, "mae", 2, True), _interval(delta, "pearson_r", 3, True)])
            lines.append(f"| {name} | {_interval(row, 'mae', 2)} | "
                         f"{_interval(row, 'pearson_r', 3)} | {_interval(row, 'std_ratio', 2)} "
                         f"| {diffs[0]} | {diffs[1]} |")
        lines.append("")
    return "\n".join(lines)


def plot(path: str, scores: dict, scored_sizes: dict[str, list[int]]) -> None:
    """MAE (top) and r (bottom) against K, one column per style, the tree as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = [s for s in scores[TREE] if s != "all"]
    fig, axes = plt.subplots(2, len(styles), figsize=(4 * len(styles), 6), squeeze=False)
    for column, style in enumerate(styles):
        for row, (key, label) in enumerate((("mae", "MAE (velocity)"), ("pearson_r", "r"))):
            ax = axes[row][column]
            for recipe, sizes in scored_sizes.items():
                ax.plot(sizes, [scores[system_name(recipe, k)][style][key] for k in sizes],
                        marker="o", label=recipe)
            ax.axhline(scores[TREE][style][key], color="gray", linestyle="--", label="tree")
            ax.set_xlabel("models in the ensemble (K)")
            ax.set_ylabel(label)
            if row == 0:
                ax.set_title(style)
    axes[0][0].legend()
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: Sequence[str]) -> None:
    began = evaluate.start_app(argv)
    from stylenet_jax import performer

    try:
        recipes = parse_members(FLAGS.member)
        if not recipes:
            raise ValueError("give at least one --member=RECIPE=PATH")
        try:
            sizes = [int(k) for k in FLAGS.sizes]
        except ValueError:
            raise ValueError(f"--sizes: whole numbers, got {FLAGS.sizes}") from None
        if any(k < 1 for k in sizes):
            raise ValueError(f"--sizes: each at least 1, got {sizes}")
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        performed, data = evaluate.load_performances()
        tree_model = performer.load_tree(FLAGS.features_model)  # loaded once, shared by all
        stylizers = []
        for path in (p for paths in recipes.values() for p in paths):
            stylizer = performer.Stylizer(path, tree=tree_model)
            if len(stylizer.members) != 1:
                raise ValueError(f"{path}: an ensemble of {len(stylizer.members)} models; "
                                 "give its runs one by one")
            stylizers.append(stylizer)
        tree = evaluation.FeaturesSystem(tree_model)
        evaluation.check_styles(performed, [tree] + [evaluation.ModelSystem(s, f"model {i}")
                                                     for i, s in enumerate(stylizers, 1)])
    except (*evaluate.BAD_INPUT, performer.StylizeError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    values, tree_velocities = perform_models(performed, stylizers, tree,
                                             evaluate.progress_printer(FLAGS.progress))
    scores, paired, scored_sizes = score(performed, recipes, sizes, values, tree_velocities,
                                         resamples=FLAGS.resamples, seed=FLAGS.seed)
    stem = os.path.splitext(FLAGS.out)[0]
    picture = stem + ".png"
    plot(picture, scores, scored_sizes)
    command = "python -m experiments.ensemble_size " + " ".join(sys.argv[1:])
    text = render(scores, paired, recipes, command=command, data=data,
                  seconds=time.perf_counter() - began, picture=picture)
    body = json.dumps({"recipes": recipes, "sizes": scored_sizes, "scores": scores,
                       "paired": paired}, indent=1)
    write_text_atomically(stem + ".json", body + "\n")
    write_text_atomically(FLAGS.out, text + "\n")
    print(f"wrote {FLAGS.out}, {stem}.json and {picture}")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
