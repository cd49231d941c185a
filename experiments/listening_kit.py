"""What a listening test plays, in what order, and the answer key (no audio, no JAX).

An ``Excerpt`` is a stretch of one human performance (10 seconds, or the whole piece, as in
the paper's final test). Every excerpt makes one ``Pair`` per system: the pianist's version
against the system's version of the same notes, in a random A/B order; the pairs are then
shuffled so that two pairs of one excerpt are rarely next to each other. Everything is drawn
from one seeded ``numpy.random.Generator``, so a kit can be rebuilt exactly.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from typing import Sequence

import numpy as np

from stylenet_jax.performances import Performed

KEY_FIELDS = ("kit", "pair", "kind", "system", "human", "style", "piece", "performance",
              "file", "start_s", "seconds")
ANSWERS = ("A", "B", "cannot tell")  # what the page records per pair
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "listening_page.html")


@dataclasses.dataclass(frozen=True)
class Excerpt:
    """``seconds`` of performance ``performance`` (an index) from ``start_s``; kind "excerpt"
    or "whole" (the whole piece)."""

    performance: int
    start_s: float
    seconds: float
    kind: str = "excerpt"


@dataclasses.dataclass(frozen=True)
class Pair:
    """Pair ``number`` (1..): the pianist against ``system`` on ``excerpt``; the pianist is
    clip A when ``human_first``."""

    number: int
    excerpt: Excerpt
    system: str
    human_first: bool

    @property
    def human(self) -> str:
        return "A" if self.human_first else "B"


def excerpt_starts(seconds: np.ndarray, length: float, min_notes: int) -> np.ndarray:
    """Onsets (float64, from ``seconds``, sorted) at which a ``length``-second excerpt
    starting 50 ms earlier holds at least ``min_notes`` onsets and ends before the last one."""
    seconds = np.sort(np.asarray(seconds, np.float64))
    if not len(seconds):
        return seconds
    starts = seconds - 0.05
    inside = np.searchsorted(seconds, starts + length, side="left") - np.arange(len(seconds))
    return seconds[(inside >= min_notes) & (starts + length <= seconds[-1])]


def choose_excerpts(performed: Sequence[Performed], count: int, length: float,
                    min_notes: int, rng: np.random.Generator) -> list[Excerpt]:
    """``count`` excerpts, styles in turn, a different piece each time until a style's
    pieces run out (then again from the start), a random performance of the piece and a
    random start in it. Performances too short for one excerpt are never chosen."""
    by_style: dict[str, dict[str, list[int]]] = {}
    for i, p in enumerate(performed):
        if len(excerpt_starts(p.seconds, length, min_notes)):
            by_style.setdefault(p.style, {}).setdefault(p.piece, []).append(i)
    if not by_style:
        raise ValueError(f"no performance has {min_notes} notes within {length:g} seconds "
                         "anywhere: lower --min_notes or --excerpt_seconds")
    queues = {style: [] for style in by_style}
    chosen: list[Excerpt] = []
    styles = sorted(by_style)
    while len(chosen) < count:
        style = styles[len(chosen) % len(styles)]
        if not queues[style]:
            pieces = sorted(by_style[style])
            queues[style] = [pieces[j] for j in rng.permutation(len(pieces))]
        options = by_style[style][queues[style].pop()]
        index = options[int(rng.integers(len(options)))]
        starts = excerpt_starts(performed[index].seconds, length, min_notes)
        start = float(starts[int(rng.integers(len(starts)))]) - 0.05
        chosen.append(Excerpt(index, max(round(start, 3), 0.0), length))
    return chosen


def choose_whole_piece(performed: Sequence[Performed], rng: np.random.Generator,
                       shortest: float = 45.0, longest: float = 180.0) -> Excerpt | None:
    """A whole performance for the final pair: a random one lasting ``shortest`` to
    ``longest`` seconds (else the shortest over ``shortest``, else None), plus 2 s of tail."""
    lengths = np.array([float(p.seconds.max()) if len(p.seconds) else 0.0 for p in performed])
    fitting = np.flatnonzero((lengths >= shortest) & (lengths <= longest))
    if len(fitting):
        index = int(fitting[int(rng.integers(len(fitting)))])
    else:
        long_enough = np.flatnonzero(lengths >= shortest)
        if not len(long_enough):
            return None
        index = int(long_enough[np.argmin(lengths[long_enough])])
    return Excerpt(index, 0.0, round(float(lengths[index]) + 2.0, 3), "whole")


def make_pairs(excerpts: Sequence[Excerpt], systems: Sequence[str],
               rng: np.random.Generator) -> list[Pair]:
    """One pair per (excerpt, system), A/B order drawn per pair, shuffled; a whole-piece
    excerpt's pairs go last (the paper's final test). Numbered from 1 in play order."""
    short = [(e, s) for e in excerpts if e.kind != "whole" for s in systems]
    whole = [(e, s) for e in excerpts if e.kind == "whole" for s in systems]
    ordered = [short[i] for i in rng.permutation(len(short))] + \
        [whole[i] for i in rng.permutation(len(whole))]
    first = rng.integers(0, 2, len(ordered)).astype(bool)
    return [Pair(n, e, s, bool(h)) for n, ((e, s), h) in enumerate(zip(ordered, first), 1)]


def clip_names(pair: Pair) -> tuple[str, str]:
    """The page's file names of the pair's A and B clips (they name no system)."""
    return f"clips/{pair.number:03d}-a.wav", f"clips/{pair.number:03d}-b.wav"


def answer_key(kit: str, pairs: Sequence[Pair], performed: Sequence[Performed]) -> str:
    """The key as CSV text (``KEY_FIELDS``): which clip of each pair is the pianist."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KEY_FIELDS)
    for pair in pairs:
        e = pair.excerpt
        p = performed[e.performance]
        writer.writerow([kit, pair.number, e.kind, pair.system, pair.human, p.style, p.piece,
                         p.id, p.path, f"{e.start_s:.3f}", f"{e.seconds:.3f}"])
    return out.getvalue()


def page(kit: str, title: str, pairs: Sequence[Pair]) -> str:
    """The listening page (``listening_page.html`` with the kit's pairs filled in): no
    system names, no answers, only pair numbers and clip files."""
    data = {"kit": kit, "title": title, "answers": list(ANSWERS),
            "pairs": [{"pair": p.number, "kind": p.excerpt.kind,
                       "seconds": p.excerpt.seconds, "a": clip_names(p)[0],
                       "b": clip_names(p)[1]} for p in pairs]}
    text = json.dumps(data).replace("</", "<\\/")  # never ends the <script> early
    with open(TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    return template.replace("/*KIT_DATA*/null", text).replace(
        "<!--TITLE-->", title.replace("&", "&amp;").replace("<", "&lt;"))
