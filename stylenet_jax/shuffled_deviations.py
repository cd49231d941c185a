"""An oracle for the price of a pianist's scatter (``experiments.evaluate
--shuffled_deviations``).

A system that nobody can tell from a pianist must vary from note to note about as much as the
pianist does around what can be predicted from the score. A scatter added to a model is drawn
without knowing the pianist's own variation, so it costs note error. This oracle is a
yardstick for that cost on the same notes. Each performance gets a system's velocities plus
the pianist's own deviations from them, shuffled among the notes of that performance. Its
deviations have exactly the pianist's amount, level and spread on that performance, but they
fall on the wrong notes. With a block of K notes, they are shuffled only within each run of
K consecutive notes (by onset, then pitch: ``error_breakdown.phrase_runs``, whose runs of 16
give every report's phrase r): the oracle then also knows the pianist's level over every K
notes, and only the note-by-note order within them is lost. Short blocks tell how closely a
model would have to follow the pianist's dynamics to be both close and hard to tell apart.

It reads the pianist's velocities, which no system may do (``evaluation.evaluate`` flattens
them first). So it is added to an ``evaluation.Evaluation`` after the systems have played,
scored like them, and named an oracle in every report. It is a yardstick to compare scatters
with, never a system to ship.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from stylenet_jax import evaluation
from stylenet_jax.error_breakdown import phrase_runs
from stylenet_jax.performances import Performed


@dataclasses.dataclass(frozen=True)
class ShuffledDeviations:
    """The oracle named ``name`` around the scored system ``part``, shuffling within runs of
    ``block`` notes (None: among all the notes of a performance)."""

    name: str
    part: str
    block: int | None = None

    @property
    def description(self) -> str:
        where = ("among the notes of each performance" if self.block is None
                 else f"within each run of {self.block} consecutive notes")
        return (f"oracle, not a system: {self.part} plus the pianist's own deviations from "
                f"it, shuffled {where} (a scatter of exactly the pianist's amount, on the "
                f"wrong notes)")


def parse(spec: str, known: Sequence[str]) -> ShuffledDeviations:
    """``NAME=SYSTEM`` or ``NAME=SYSTEM:K`` -> ShuffledDeviations; SYSTEM must be in ``known``
    (scored in the same evaluation), NAME none of them, and K (the block) an integer of 2 or
    more. Raises ValueError (one line) otherwise."""
    name, sep, body = (text.strip() for text in spec.partition("="))
    part, colon, block_text = (text.strip() for text in body.partition(":"))
    if not sep or not name or part not in known:
        raise ValueError(f"--shuffled_deviations {spec!r}: expected NAME=SYSTEM or "
                         f"NAME=SYSTEM:K with a system of {', '.join(known)}")
    if name in known:
        raise ValueError(f"--shuffled_deviations {spec!r}: {name!r} is already the name of a "
                         "system")
    block = None
    if colon:
        block = int(block_text) if block_text.isdigit() else 0
        if block < 2:
            raise ValueError(f"--shuffled_deviations {spec!r}: the block K must be an "
                             f"integer of 2 or more, got {block_text!r}")
    return ShuffledDeviations(name, part, block)


def shuffled(human: np.ndarray, played: np.ndarray, rng: np.random.Generator,
             runs: np.ndarray | None = None) -> np.ndarray:
    """int64 (n,): ``played`` (int (n,), a system's velocities of n notes) plus the deviations
    ``human - played`` (the pianist's int (n,)) in an order drawn from ``rng``, clipped to
    1..127; with ``runs`` (int (n,), each note's run), each deviation moves only among the
    notes of its own run. Before clipping, its deviations from ``played`` are the
    pianist's, permuted."""
    played = np.asarray(played, np.int64)
    deviations = np.asarray(human, np.int64) - played
    runs = np.zeros(len(deviations), np.int64) if runs is None else np.asarray(runs)
    slots = np.argsort(runs, kind="stable")  # each run's notes, run by run
    order = np.lexsort((rng.random(len(runs)), runs))  # the same, each run in random order
    moved = deviations.copy()
    moved[slots] = deviations[order]
    return np.clip(played + moved, 1, 127)


def add(result: evaluation.Evaluation, performed: Sequence[Performed],
        oracles: Sequence[ShuffledDeviations], seed: int = 0) -> evaluation.Evaluation:
    """``result`` (of ``evaluation.evaluate(performed, ...)``) with each oracle scored beside
    its part, after the systems: the same comparisons and velocities for every performance.
    Each performance's order is drawn from ``seed`` and its id, so a report is
    reproducible."""
    comparisons, velocities = dict(result.comparisons), dict(result.velocities)
    for oracle in oracles:
        comparisons[oracle.name], velocities[oracle.name] = {}, []
        for human, played in zip(performed, velocities[oracle.part]):
            rng = np.random.default_rng([seed, *human.id.encode()])
            runs = None if oracle.block is None else phrase_runs(human, oracle.block)
            mine = shuffled(human.notes.velocity, played, rng, runs)
            comparisons[oracle.name].setdefault(human.style, []).append(
                evaluation.compare(human, evaluation.Performance(mine)))
            velocities[oracle.name].append(mine)
    return evaluation.Evaluation(comparisons, velocities)
