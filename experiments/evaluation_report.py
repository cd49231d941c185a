"""Markdown for an evaluation: per style, one row per system with its 95% intervals."""

from __future__ import annotations

import platform
import time
from typing import Mapping, Sequence

import numpy as np

from stylenet_jax import error_breakdown

COLUMNS = (  # (key, header, format, has an interval)
    ("mae", "MAE", "{:.2f}", True),
    ("rmse", "RMSE", "{:.2f}", True),
    ("pearson_r", "Pearson r", "{:.3f}", True),
    ("spearman_rho", "Spearman rho", "{:.3f}", False),
    ("median_piece_r", "median piece r", "{:.3f}", True),
    ("std_ratio", "spread ratio", "{:.2f}", True),
    ("wasserstein", "W1", "{:.2f}", False),
    ("range_predicted", "range p95-p5", "{:.0f}", False),
    ("distinct_predicted", "distinct", "{:d}", False),
    ("mse_matrix", "MSE (T,88)", "{:.5f}", True),
    ("mse_sounding", "MSE sounding", "{:.5f}", True),
)


def _cell(row: Mapping[str, float], key: str, fmt: str, interval: bool) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    text = fmt.format(value)
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    if interval and lo is not None and lo == lo and hi == hi:
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return text


def style_table(results: Mapping[str, Mapping[str, Mapping[str, float]]], style: str,
                systems: Sequence[str]) -> list[str]:
    """Markdown lines: one row per system (that has this style) plus the pianist's line."""
    lines = ["| system | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    human = None
    for name in systems:
        row = results.get(name, {}).get(style)
        if row is None:
            continue
        human = human or row
        lines.append(f"| {name} | " + " | ".join(_cell(row, key, fmt, interval)
                                                  for key, _, fmt, interval in COLUMNS) + " |")
    if human is not None:
        lines.append(f"| *pianist* | 0 | 0 | 1 | 1 | 1 | 1 | 0 | {human['range_human']:.0f} | "
                     f"{human['distinct_human']} | 0 | 0 |")
    return lines


def summary_table(results: Mapping[str, Mapping[str, Mapping[str, float]]],
                  systems: Sequence[str], styles: Sequence[str]) -> list[str]:
    """Markdown lines: a row per system, per style its MAE, Pearson r and spread ratio."""
    lines = ["| system | " + " | ".join(f"{s} MAE / r / spread" for s in styles) + " |",
             "|---|" + "---|" * len(styles)]
    for name in systems:
        cells = []
        for style in styles:
            row = results.get(name, {}).get(style)
            cells.append("-" if row is None else " / ".join(
                _cell(row, key, fmt, False) for key, fmt in
                (("mae", "{:.1f}"), ("pearson_r", "{:.2f}"), ("std_ratio", "{:.2f}"))))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def paired_table(paired: Mapping[str, Mapping[str, Mapping[str, float]]],
                 systems: Sequence[str], styles: Sequence[str]) -> list[str]:
    """Markdown lines: per system, per style its Δ MAE and Δ r against the reference with
    the paired interval, bold where it excludes 0."""
    lines = ["| system | " + " | ".join(f"{s} Δ MAE | {s} Δ r" for s in styles) + " |",
             "|---|" + "---|---|" * len(styles)]
    for name in systems:
        if name not in paired:
            continue
        cells = []
        for style in styles:
            d = paired[name].get(style)
            for key, fmt in (("mae", "{:+.2f}"), ("pearson_r", "{:+.3f}")):
                if d is None:
                    cells.append("-")
                    continue
                if not np.isfinite([d[key], d[key + "_lo"], d[key + "_hi"]]).all():
                    cells.append("-")  # e.g. the r of a constant system
                    continue
                text = (f"{fmt.format(d[key])} [{fmt.format(d[key + '_lo'])}, "
                        f"{fmt.format(d[key + '_hi'])}]")
                cells.append(f"**{text}**" if d[key + "_lo"] > 0 or d[key + "_hi"] < 0
                             else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


TIMING_SENTENCES = {
    "performed": "Systems were given the notes as the pianist timed them (their seconds: "
                 "rubato, and each note early or late against its grid step).",
    "score": "Systems were given the notes as a score times them (`--timing=score`): on the "
             "1/16 grid at one steady tempo, the performance's mean; no rubato, no note early "
             "or late, as in a musician's sheet-music file.",
}

NO_PEDALS_SENTENCE = ("The pianist's pedals were hidden from the systems (`--nopedals`), as in "
                      "a sheet-music file: a tree fitted with `--pedals` read none.")


def classifier_split(both_halves: bool) -> str:
    """How the identify-the-human classifier was trained and scored, for a report."""
    return ("on each half of the pieces in turn, and each half is scored by the one trained "
            "on the other" if both_halves else
            "on half of the pieces, and is scored on the other half")


def _number(value: float, fmt: str) -> str:
    return "-" if not np.isfinite(value) else format(value, fmt)


def breakdown_sections(breakdown: Mapping[str, Mapping[str, Mapping]], systems: Sequence[str],
                       styles: Sequence[str]) -> list[str]:
    """"Level or shape" and "By musical role" (``error_breakdown.breakdown``), as lines."""
    return level_or_shape_section(breakdown, systems, styles) + roles_section(
        breakdown, systems, styles)


def level_or_shape_section(breakdown: Mapping[str, Mapping[str, Mapping]],
                           systems: Sequence[str], styles: Sequence[str],
                           preamble: str = "") -> list[str]:
    """"Level or shape" (``error_breakdown.breakdown``'s figures but the roles), as lines;
    ``preamble``: a sentence or two to put before the explanation."""
    out = ["## Level or shape", "", (f"{preamble} " if preamble else "") +
           "Each performance's overall level (its mean velocity) apart from the shape within "
           "it (each note's deviation from its own performance's mean): level bias (the mean "
           "signed difference: below 0, the system plays the style softer than the pianists "
           "did), level MAE and level r compare the performances' means, system against "
           "pianist, over the style's performances (r: '-' for a constant system or fewer "
           "than 3 performances); "
           "centred MAE compares the deviations note by note (`stylenet_jax.error_breakdown`). "
           f"The deviations are then split into runs of {error_breakdown.PHRASE_NOTES} "
           "consecutive notes: phrase r correlates the runs' mean deviations, system against "
           "pianist (does it get louder and softer where the pianist does?), and in-phrase "
           "MAE compares what is left within the runs, note by note.",
           "", "| system | " + " | ".join(f"{s} level bias / level MAE / level r / centred MAE"
                                           " / phrase r / in-phrase MAE"
                                           for s in styles) + " |",
           "|---|" + "---|" * len(styles)]
    for name in systems:
        cells = [f"{b['level_bias']:+.1f} / {b['level_mae']:.1f} / "
                 f"{_number(b['level_r'], '.2f')} / {b['centred_mae']:.1f} / "
                 f"{_number(b['phrase_r'], '.2f')} / {b['in_phrase_mae']:.1f}"
                 for b in (breakdown[name][s] for s in styles)]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out + [""]


def roles_section(breakdown: Mapping[str, Mapping[str, Mapping]], systems: Sequence[str],
                  styles: Sequence[str]) -> list[str]:
    """"By musical role" (``error_breakdown.breakdown``'s roles), as lines."""
    out = ["## By musical role", "",
            "Centred MAE (as above) on the notes of each role, and in brackets the mean "
            "deviation from the performance's mean that the system gives them; the pianist's "
            "own is in the third column (the top voice above the piece's mean, the bass "
            "below it...). Roles from the tree baseline's note features; a note can have "
            "several.", ""]
    for style in styles:
        roles = breakdown[systems[0]][style]["roles"]
        out += [f"**{style}**", "",
                "| role | share of notes | pianist | " + " | ".join(systems) + " |",
                "|---|---|---|" + "---|" * len(systems)]
        for role, row in roles.items():
            cells = [f"{_number(breakdown[n][style]['roles'][role]['centred_mae'], '.2f')} "
                     f"({_number(breakdown[n][style]['roles'][role]['deviation'], '+.1f')})"
                     for n in systems]
            out.append(f"| {role} | {row['share']:.2f} | "
                       f"{_number(row['pianist_deviation'], '+.1f')} | " + " | ".join(cells)
                       + " |")
        out.append("")
    return out


def _identified_cell(row: dict) -> str:
    return f"{row['accuracy']:.3f} [{row['accuracy_lo']:.3f}, {row['accuracy_hi']:.3f}]"


def identified_section(identified: dict, both_halves: bool) -> list[str]:
    """Markdown lines: per system, how often the classifier picks the pianist, over all test
    pairs and (where ``evaluation.identify_the_human`` gave them) over each style's."""
    styles = sorted({style for r in identified.values() for style in r.get("by_style", {})})
    out = ["## Identify the human", "",
           "A small classifier (`stylenet_jax.human_classifier`) learns to pick the "
           "pianist's version of a 10-second excerpt from the system's version of the same "
           f"notes, {classifier_split(both_halves)} (interval: "
           "bootstrap over test pieces). 0.5 is chance; the paper's listeners picked the "
           "human 53% of the time in 10-second clips. The classifier sees exact velocity "
           "numbers, so it is a far harsher judge than a listener."
           + (" One classifier judges every style; each style's column scores it on that "
              "style's test pairs alone." if styles else ""), "",
           "| system | human identified | " + "".join(f"{s} | " for s in styles)
           + "test pairs | test pieces |", "|---" * (4 + len(styles)) + "|"]
    for name, r in identified.items():
        by_style = r.get("by_style", {})
        cells = "".join(f"{_identified_cell(by_style[s])} | " if s in by_style else "- | "
                        for s in styles)
        out.append(f"| {name} | {_identified_cell(r)} | {cells}{r['pairs']} | {r['pieces']} |")
    return out + [""]


def render(results: Mapping[str, Mapping[str, Mapping[str, float]]], *, title: str,
           command: str, data: str, systems_described: Mapping[str, str],
           pictures: Sequence[tuple[str, str]], seconds: float, notes: Sequence[str] = (),
           resamples: int = 2000,
           identified: Mapping[str, Mapping[str, float]] | None = None,
           timing: str = "performed", pedals: bool = True,
           paired: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
           paired_reference: str = "features",
           breakdown: Mapping[str, Mapping[str, Mapping]] | None = None,
           both_halves: bool = False) -> str:
    """The whole report. ``results``: ``evaluation.scores``; ``pictures``: (caption, path
    relative to the report); ``breakdown``: ``error_breakdown.breakdown`` (None: left out)."""
    systems = list(systems_described)
    styles = [s for s in next(iter(results.values())) if s != "all"] + ["all"]
    first = results[systems[0]]
    out = [f"# {title}", "",
           f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
           f"{platform.machine()} CPU ({platform.node() or 'this machine'}), "
           f"{seconds:.0f} s wall.", "",
           f"Data: {data}", "",
           "Every performance's velocities were flattened before a system performed it; each "
           "note's velocity is then compared with the pianist's. MIDI velocity units "
           "(1..127); notes pooled over the performances of a style. In brackets: 95% "
           f"intervals by bootstrap over pieces ({resamples} resamples; a piece's "
           "performances are drawn together). Spread ratio: the system's standard deviation "
           "over the pianist's (below 1: compressed dynamics). W1: Wasserstein distance "
           "between the two velocity distributions. MSE (T,88): the paper's figure, "
           "(velocity/127)^2 over the whole piano-roll matrix; MSE sounding: over the cells "
           "where a note sounds.", "", TIMING_SENTENCES[timing]
           + ("" if pedals else " " + NO_PEDALS_SENTENCE), "",
           "Systems:", ""]
    out += [f"- `{name}`: {text}" for name, text in systems_described.items()]
    out += [""] + [f"- {line}" for line in notes] + ([""] if notes else [])
    out += ["## Summary", "", "MAE (velocity units), Pearson r and spread ratio per style; "
            "the tables below add the intervals and the other figures.", ""]
    out += summary_table(results, systems, [s for s in styles if s != "all"]) + [""]
    if paired:
        out += [f"## Against `{paired_reference}`", "",
                f"Each system minus `{paired_reference}` on the same notes: negative Δ MAE and "
                "positive Δ r are better. In brackets: 95% intervals by paired bootstrap over "
                f"pieces ({resamples} resamples, both systems scored on each); bold where the "
                "interval excludes 0.", ""]
        out += paired_table(paired, systems, styles) + [""]
    for style in styles:
        if style not in first:
            continue
        row = first[style]
        out += [f"## {style}", "",
                f"{row['performances']} performances of {row['pieces']} pieces, "
                f"{row['notes']:,} notes.", ""]
        out += style_table(results, style, systems) + [""]
    if breakdown:
        out += breakdown_sections(breakdown, systems, [s for s in styles if s != "all"])
    if identified:
        out += identified_section(identified, both_halves)
    if pictures:
        out += ["## Pictures", ""]
        for caption, path in pictures:
            out += [f"{caption}", "", f"![{caption}]({path})", ""]
    return "\n".join(out)
