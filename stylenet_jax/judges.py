"""The judges of "identify the human", by name: each learns on pairs of excerpts (the pianist's
velocities and a system's, on the same notes; ``human_classifier.Pair``) and says which
version is the pianist's.

- ``classifier``: the evaluation's own (``human_classifier``, ``WIDTH`` channels, trained
  ``EXCERPT_STEPS`` steps of ``EXCERPT_BATCH`` pairs). The learned scatter
  (``scatter_training``) plays against this kind of judge.
- ``wider``: the same network at ``WIDER_WIDTH`` channels, trained ``WIDER_STEP_FACTOR`` times
  as long: a judge of the same kind the scatter never met.
- ``trees``: gradient-boosted trees on summary statistics of each excerpt
  (``statistics_judge``): a judge of another kind altogether.

``score`` trains one on half of the pieces and scores the other half, or (``both_halves``)
does so each way round, so every piece is scored once by a judge that never saw it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from stylenet_jax import human_classifier, statistics_judge
from stylenet_jax.evaluation import EXCERPT_TRAINING
from stylenet_jax.human_classifier import Pair

EXCERPT_STEPS, EXCERPT_BATCH = EXCERPT_TRAINING  # the evaluation's, on 10-second excerpts
WIDER_WIDTH, WIDER_STEP_FACTOR = 64, 4

DESCRIPTIONS = {
    "classifier": f"the evaluation's classifier ({human_classifier.WIDTH} channels, "
                  f"{EXCERPT_STEPS} steps)",
    "wider": f"a wider classifier ({WIDER_WIDTH} channels, {WIDER_STEP_FACTOR}x the steps)",
    "trees": f"trees on {len(statistics_judge.STATISTIC_NAMES)} excerpt statistics",
}
NAMES = tuple(DESCRIPTIONS)


def trainer(name: str, steps: int = EXCERPT_STEPS) -> Callable[..., dict]:
    """The judge ``name`` (one of ``NAMES``) as ``judge(train, test, seed=...) -> dict`` with
    accuracy, pairs, pieces, ci95 and margins (``human_classifier.train_and_score``'s keys).
    ``steps``: the evaluation classifier's training steps (the wider one trains
    ``WIDER_STEP_FACTOR`` times as many; the trees ignore it). Raises ValueError for an
    unknown name."""
    if name == "classifier":
        return lambda train, test, seed: human_classifier.train_and_score(
            train, test, steps=steps, batch_size=EXCERPT_BATCH, seed=seed)
    if name == "wider":
        return lambda train, test, seed: human_classifier.train_and_score(
            train, test, steps=steps * WIDER_STEP_FACTOR, batch_size=EXCERPT_BATCH, seed=seed,
            width=WIDER_WIDTH)
    if name == "trees":
        return lambda train, test, seed: statistics_judge.tree_judge(train, test, seed=seed)
    raise ValueError(f"unknown judge {name!r}; choose among {', '.join(NAMES)}")


def score(pairs: Sequence[Pair], name: str, *, seed: int = 0, both_halves: bool = True,
          steps: int = EXCERPT_STEPS) -> dict:
    """How often judge ``name`` picks the pianist in ``pairs`` (ties count half): trained on
    half of the pieces (``human_classifier.split_pieces`` with ``seed``) and scored on the
    other, or with ``both_halves`` each way round. Returns accuracy, ci95 (bootstrap over
    the scored pieces), pairs and pieces scored, ``correct`` and ``test_pieces`` per scored
    pair (and ``halves`` with ``both_halves``)."""
    judge = trainer(name, steps)
    if both_halves:
        return human_classifier.score_both_halves(pairs, seed=seed, judge=judge)
    train, test = human_classifier.split_pieces(pairs, 0.5, seed)
    return judge(train, test, seed=seed)
