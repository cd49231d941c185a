"""``results/ablations.md`` and its validation-curve PNG, from the sweep's runs."""

from __future__ import annotations

import os
import platform
import time
from typing import Mapping, Sequence

import numpy as np

from stylenet_jax import metrics
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.performances import Performed

STYLE_COLUMNS = (("mae", "MAE", "{:.1f}"), ("pearson_r", "r", "{:.2f}"))
ALL_COLUMNS = (("median_piece_r", "median piece r", "{:.2f}"),
               ("std_ratio", "spread ratio", "{:.2f}"),
               ("mse_matrix", "MSE (T,88)", "{:.4f}"),
               ("mse_sounding", "MSE sounding", "{:.4f}"),
               ("classifier_accuracy", "human identified", "{:.2f}"))


def mean_sd(values: Sequence[float], fmt: str) -> str:
    """"m" for one value, "m +/- sd" for several (sample sd), "-" for none."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def _styles(rows: Mapping[str, dict]) -> list[str]:
    for row in rows.values():
        for run in row["runs"]:
            return [s for s in run["scores"] if s != "all"]
    return []


def table(rows: Mapping[str, dict]) -> list[str]:
    """Markdown lines: one row per variant, mean +/- sd over its seeds."""
    styles = _styles(rows)
    header = ["variant"] + [f"{title} {s}" for key, title, _ in STYLE_COLUMNS for s in styles] \
        + [title for _, title, _ in ALL_COLUMNS] + ["seeds", "epochs", "wall (min)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, row in rows.items():
        runs = row["runs"]
        cells = [f"`{name}`"]
        for key, _, fmt in STYLE_COLUMNS:
            cells += [mean_sd([r["scores"].get(s, {}).get(key) for r in runs], fmt)
                      for s in styles]
        cells += [mean_sd([r["scores"]["all"].get(key) for r in runs], fmt)
                  for key, _, fmt in ALL_COLUMNS]
        cells += [str(len(runs)), mean_sd([r["epochs"] for r in runs], "{:.0f}"),
                  mean_sd([r["wall_seconds"] / 60 for r in runs], "{:.1f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


PAIRED_COLUMNS = (("mae", "Δ MAE", "{:+.1f}"), ("pearson_r", "Δ r", "{:+.3f}"))


def _paired_rows(variant: dict, reference: dict, style: str | None
                 ) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """The two variants' note sums on one style (None: every style), rows of the seeds both
    ran, concatenated seed by seed: (pieces, sums of the reference, sums of the variant)."""
    by_seed = {r["seed"]: r for r in reference["runs"] if "sums" in r}
    pieces, ref_rows, var_rows = [], [], []
    for run in variant["runs"]:
        other = by_seed.get(run.get("seed"))
        if other is None or "sums" not in run:
            continue
        for s in ([style] if style else sorted(run["sums"])):
            mine, theirs = run["sums"].get(s), other["sums"].get(s)
            if not mine or not theirs or mine["ids"] != theirs["ids"]:
                return None  # scored on other performances: not comparable
            pieces += mine["pieces"]
            ref_rows += theirs["sums"]
            var_rows += mine["sums"]
    if not pieces:
        return None
    return pieces, np.asarray(ref_rows), np.asarray(var_rows)


def paired_table(rows: Mapping[str, dict], reference: str, resamples: int) -> list[str]:
    """Markdown lines: each variant minus the reference, per style and over every style, with
    95% paired bootstrap intervals over pieces; bold where the interval excludes 0."""
    styles = _styles(rows)
    header = ["variant"] + [f"{title} {s}" for s in styles + ["all"]
                            for _, title, _ in PAIRED_COLUMNS] + ["Δ spread (all)", "seeds"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, row in rows.items():
        if name == reference:
            continue
        cells = [f"`{name}`"]
        seeds = "-"
        for style in styles + [None]:
            paired = _paired_rows(row, rows[reference], style)
            if paired is None:
                cells += ["-"] * len(PAIRED_COLUMNS) + ([] if style else ["-"])
                continue
            d = metrics.paired_difference(*paired, resamples=resamples)
            columns = PAIRED_COLUMNS + ((("std_ratio", "", "{:+.2f}"),) if style is None else ())
            for key, _, fmt in columns:
                if not np.isfinite([d[key], d[key + "_lo"], d[key + "_hi"]]).all():
                    cells.append("-")  # e.g. the r of a constant system
                    continue
                text = (f"{fmt.format(d[key])} [{fmt.format(d[key + '_lo'])}, "
                        f"{fmt.format(d[key + '_hi'])}]")
                cells.append(f"**{text}**" if d[key + "_lo"] > 0 or d[key + "_hi"] < 0
                             else text)
            seeds = str(len({r.get("seed") for r in row["runs"]}
                            & {r.get("seed") for r in rows[reference]["runs"]}))
        lines.append("| " + " | ".join(cells + [seeds]) + " |")
    return lines


def plot_curves(path: str, curves: Mapping[str, list]) -> str:
    """Draws {variant: [(epochs, validation losses) per run]} to a PNG at ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.2), dpi=110)
    ax = fig.subplots()
    for i, (name, runs) in enumerate(curves.items()):  # 10 colours, then new dashes
        style = {"color": f"C{i % 10}", "linestyle": ("-", "--", ":")[i // 10 % 3]}
        for k, (epochs, losses) in enumerate(runs):
            ax.plot(epochs, losses, lw=1.2, alpha=0.9 if k == 0 else 0.5,
                    label=name if k == 0 else None, **style)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (each variant's own loss)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    return path


def write(out: str, rows: Mapping[str, dict], performed: Sequence[Performed],
          command: str, reference: str | None = None, resamples: int = 500) -> str:
    """Writes the report (and ``<out without .md>/curves.png``); returns ``out``."""
    picture_dir = os.path.splitext(out)[0]
    os.makedirs(picture_dir, exist_ok=True)
    picture = plot_curves(os.path.join(picture_dir, "curves.png"), {
        name: [r["curve"] for r in row["runs"] if r.get("curve")] for name, row in rows.items()})
    notes = sum(len(p.notes) for p in performed)
    text = [
        "# Ablations", "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()} ({platform.node() or 'this machine'}).", "",
        f"Every variant trained with the same budget and scored on the same {len(performed)} "
        f"held-out performances ({len({p.piece for p in performed})} pieces, {notes:,} notes; "
        "pieces no variant trained on), note by note after flattening their velocities. "
        "MAE in velocity units; r: Pearson correlation with the pianist; spread ratio: the "
        "model's standard deviation over the pianist's; MSE (T,88): the paper's whole-matrix "
        "figure; human identified: the classifier's accuracy (0.5 = chance). With several "
        "seeds: mean ± sd.", "",
        *table(rows), "",
        *([f"## Against `{reference}`", "",
           f"Each variant minus `{reference}` on the same notes (seed for seed): negative Δ "
           "MAE and positive Δ r are better. In brackets: 95% intervals by paired bootstrap "
           f"over pieces ({resamples} resamples; both systems scored on each resample); bold "
           "where the interval excludes 0. They measure how much the choice of test pieces "
           "could move the difference, not how much another training seed would: with one "
           "seed a difference can still be that seed's luck.", "",
           *paired_table(rows, reference, resamples), ""]
          if reference in rows and len(rows) > 1 else []),
        "Variants:", "",
        *[f"- `{name}`: {row['description']}" for name, row in rows.items()], "",
        f"![validation curves]({os.path.relpath(picture, os.path.dirname(os.path.abspath(out)))})",
        ""]
    return write_text_atomically(out, "\n".join(text))
