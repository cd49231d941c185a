"""The evaluation report's pictures: which pieces and systems go into which PNG."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from stylenet_jax import evaluation, evaluation_plots
from stylenet_jax.performances import Performed

BASELINES_SHOWN = ("features", "constant")  # beside the models; random would hide the rest


def chosen_pieces(performed: Sequence[Performed], count: int) -> list[int]:
    """Indices of ``count`` performances: the longest of each style first, then the next."""
    by_style: dict[str, list[int]] = {}
    for i, p in enumerate(performed):
        by_style.setdefault(p.style, []).append(i)
    ranked = [sorted(v, key=lambda i: -len(performed[i].notes)) for v in by_style.values()]
    order = [i for rank in range(max(map(len, ranked), default=0))
             for r in ranked if rank < len(r) for i in [r[rank]]]
    return order[:count]


def write_all(plots_dir: str, performed: Sequence[Performed], result: evaluation.Evaluation,
              systems: Sequence[str], pieces: int, relative_to: str,
              scores: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
              ) -> list[tuple[str, str]]:
    """Writes the PNGs; returns (caption, path relative to ``relative_to``) pairs.
    ``scores`` (``evaluation.scores``'s, with the classifier's ``classifier_*`` entries
    under ``"all"``) adds the picture of error against realism, when the classifier ran."""
    os.makedirs(plots_dir, exist_ok=True)
    models = [s for s in systems if s not in evaluation.BASELINES]
    shown = models + [b for b in BASELINES_SHOWN if b in systems]
    styles = sorted({p.style for p in performed})
    human = {s: np.concatenate([p.notes.velocity for p in performed if p.style == s]).astype(
        np.int64) for s in styles}
    pooled = {name: {s: np.concatenate([v for p, v in zip(performed, result.velocities[name])
                                        if p.style == s]) for s in styles} for name in shown}
    out = []
    if pieces > 0 and shown:
        path = evaluation_plots.plot_over_time(
            os.path.join(plots_dir, "over_time.png"), performed,
            {n: result.velocities[n] for n in shown}, chosen_pieces(performed, pieces))
        out.append(("The first 30 seconds of a few pieces: each dot a note's velocity, each "
                    "line its 2-second moving average; black is the pianist.", path))
    for name in [s for s in (models[:1] + ["features"]) if s in shown]:
        path = evaluation_plots.plot_scatter(os.path.join(plots_dir, f"scatter_{name}.png"),
                                             human, pooled[name], name)
        out.append((f"`{name}` against the pianist, note by note (on the dashed line: "
                    "the pianist's own velocity).", path))
    spread = [n for n in shown if n != "constant"]  # one spike, no distribution
    if spread:
        path = evaluation_plots.plot_distributions(os.path.join(plots_dir, "distributions.png"),
                                                   human, {n: pooled[n] for n in spread})
        out.append(("How often each velocity is played: the pianist (grey) and the systems.",
                    path))
    judged = {n: scores[n]["all"] for n in shown
              if scores and "classifier_accuracy" in scores.get(n, {}).get("all", {})}
    if judged:
        path = evaluation_plots.plot_realism(
            os.path.join(plots_dir, "realism.png"),
            {n: (row["mae"], row["classifier_accuracy"], row["classifier_accuracy_lo"],
                 row["classifier_accuracy_hi"]) for n, row in judged.items()})
        out.append(("Error against realism: each system's MAE over all notes against how "
                    "often the classifier picks the pianist over it (bars: 95% intervals); "
                    "lower left is better, and 0.5 is a system it cannot tell from the "
                    "pianist.", path))
    return [(caption, os.path.relpath(path, relative_to)) for caption, path in out]
