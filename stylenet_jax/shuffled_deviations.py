"""An oracle for the price of a pianist's scatter (``experiments.evaluate
--shuffled_deviations``).

A system that nobody can tell from a pianist must vary from note to note about as much as the
pianist does around what can be predicted from the score. A scatter added to a model is drawn
without knowing the pianist's own variation, so it costs note error. This oracle is a
yardstick for that cost on the same notes. Each performance gets a system's velocities plus
the pianist's own deviations from them, shuffled among the notes of that performance. Its
deviations have exactly the pianist's amount, level and spread on that performance, but they
fall on the wrong notes.

It reads the pianist's velocities, which no system may do (``evaluation.evaluate`` flattens
them first). So it is added to an ``evaluation.Evaluation`` after the systems have played,
scored like them, and named an oracle in every report. It is a bound to compare scatters
with, never a system to ship.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from stylenet_jax import evaluation
from stylenet_jax.performances import Performed


@dataclasses.dataclass(frozen=True)
class ShuffledDeviations:
    """The oracle named ``name`` around the scored system ``part``."""

    name: str
    part: str

    @property
    def description(self) -> str:
        return (f"oracle, not a system: {self.part} plus the pianist's own deviations from "
                f"it, shuffled among the notes of each performance (a scatter of exactly "
                f"the pianist's amount, on the wrong notes)")


def parse(spec: str, known: Sequence[str]) -> ShuffledDeviations:
    """``NAME=SYSTEM`` -> ShuffledDeviations; SYSTEM must be in ``known`` (scored in the same
    evaluation) and NAME none of them. Raises ValueError (one line) otherwise."""
    name, sep, part = (text.strip() for text in spec.partition("="))
    if not sep or not name or part not in known:
        raise ValueError(f"--shuffled_deviations {spec!r}: expected NAME=SYSTEM with a system "
                         f"of {', '.join(known)}")
    if name in known:
        raise ValueError(f"--shuffled_deviations {spec!r}: {name!r} is already the name of a "
                         "system")
    return ShuffledDeviations(name, part)


def shuffled(human: np.ndarray, played: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int64 (n,): ``played`` (int (n,), a system's velocities of n notes) plus the deviations
    ``human - played`` (the pianist's int (n,)) in an order drawn from ``rng``, clipped to
    1..127. Before clipping, its deviations from ``played`` are the pianist's, permuted."""
    played = np.asarray(played, np.int64)
    deviations = np.asarray(human, np.int64) - played
    return np.clip(played + rng.permutation(deviations), 1, 127)


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
            mine = shuffled(human.notes.velocity, played, rng)
            comparisons[oracle.name].setdefault(human.style, []).append(
                evaluation.compare(human, evaluation.Performance(mine)))
            velocities[oracle.name].append(mine)
    return evaluation.Evaluation(comparisons, velocities)
