"""Which examined files a dataset keeps, and why the others are left out.

A file is kept when it was readable, has at least one piano note, is not too long
(``encoding.too_long``), has only allowed meters (``meter_allowed``) and enough distinct
velocities; ``rejection`` gives the one-line reason otherwise, ``reason_kind`` its column in
the build's summary table (``summary_table``). Pure functions over the facts
``data_prep.examine`` gathers (no file is read here).
"""

from __future__ import annotations

import collections
from typing import Sequence

from stylenet_jax import encoding

QUARTER_BEAT = "quarter"  # --time_signatures value: any meter whose beat is a quarter note


def meter_allowed(signatures: Sequence[Sequence[int]],
                  allowed: set[tuple[int, int]] | str) -> bool:
    """True if every time signature of a file, (numerator, denominator) pairs, is allowed
    (a file with none is in 4/4). ``allowed``: a set of pairs, ``QUARTER_BEAT`` or "any"
    (``build.parse_time_signatures``)."""
    signatures = [tuple(s) for s in signatures] or [(4, 4)]
    if allowed == "any":
        return True
    if allowed == QUARTER_BEAT:
        return all(d == 4 for _, d in signatures)
    return all(s in allowed for s in signatures)


def rejection(facts: dict, allowed_meters: set[tuple[int, int]] | str,
              min_velocities: int) -> str | None:
    """Why a file is left out (one line), or None if it is kept. ``facts``: what
    ``examine.examine`` returned for it; ``allowed_meters`` as in ``meter_allowed``."""
    if "error" in facts:
        return "unreadable: " + facts["error"]
    if facts["notes"] == 0:
        return "no piano notes"
    if encoding.too_long(facts["steps"]):
        return encoding.too_long(facts["steps"])
    if not meter_allowed(facts["time_signatures"], allowed_meters):
        meters = ",".join(f"{n}/{d}" for n, d in facts["time_signatures"])
        return f"time signature {meters} not allowed"
    if facts["n_velocities"] < min_velocities:
        return f"{facts['n_velocities']} distinct velocities (< {min_velocities})"
    return None


def reason_kind(reason: str) -> str:
    """The table column of a rejection reason."""
    for kind in ("unreadable", "no piano notes", "too long", "time signature",
                 "distinct velocities"):
        if kind in reason:
            return "too few velocities" if kind == "distinct velocities" else kind
    return reason


def summary_table(songs: list[dict], rejected: list[dict]) -> str:
    """Kept (train/validation/test) and rejected counts per style and per reason, as text."""
    kinds = sorted({reason_kind(r["reason"]) for r in rejected})
    styles = sorted({s["style"] for s in songs} | {r["style"] or "(none)" for r in rejected})
    header = ["style", "kept", "train", "validation", "test", "rejected"] + kinds
    rows = []
    for style in styles + ["total"]:
        mine = [s for s in songs if style in ("total", s["style"])]
        out = [r for r in rejected if style in ("total", r["style"] or "(none)")]
        count = collections.Counter(reason_kind(r["reason"]) for r in out)
        rows.append([style, len(mine), sum(s["split"] == "train" for s in mine),
                     sum(s["split"] == "validation" for s in mine),
                     sum(s["split"] == "test" for s in mine), len(out)]
                    + [count[k] for k in kinds])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                       for i, (x, w) in enumerate(zip(row, widths))) for row in [header] + rows]
    return "\n".join(lines)
