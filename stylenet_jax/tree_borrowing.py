"""A style's trees that also learn from other styles' notes (pure numpy, no scikit-learn).

Jazz has 47 training pieces, a tenth of classical's notes. ``FeatureBaseline.fit(...,
borrow={"jazz": ("pop",)})`` fits jazz's trees on jazz's notes and on pop's, each row with one
column per lending style (1 on that style's notes, else 0), so the trees can tell whose note
it is; when they play jazz those columns are 0. The style's notes are weighted so that they
weigh as much in total as the lenders' (``balanced_weights``). Early stopping watches the
style's own held-out songs only. Off by default; an experiment (``--borrow=jazz:pop`` in
``experiments.feature_baseline`` and ``experiments.tree_prior``).

Why: in a first out-of-fold check of this design (a scratch script, the same three piece
folds as the shipped priors, the shipped tree's columns and settings, the 770 training
performances of the quarter-beat build), jazz's note MAE went from 11.17 (r 0.673) alone to
11.03 (0.679) with pop's notes unweighted and 10.96 (0.685) weighted. The priors of
``experiments.tree_prior --borrow=jazz:pop`` are the measurement to trust.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


class BorrowError(ValueError):
    """A borrowing that cannot be served (one line naming why)."""


def parse_borrow(specs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["jazz:pop", "pop:jazz+classical"]`` -> ``{"jazz": ("pop",), "pop": ("classical",
    "jazz")}`` (lenders sorted); raises BorrowError for a bad, repeated or self-lending spec."""
    borrow: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        style, sep, lenders = (part.strip() for part in spec.partition(":"))
        names = sorted({name.strip() for name in lenders.split("+") if name.strip()})
        if not sep or not style or not names:
            raise BorrowError(f"--borrow {spec!r}: expected STYLE:LENDER[+LENDER...], "
                              "e.g. jazz:pop")
        if style in names or style in borrow:
            raise BorrowError(f"--borrow {spec!r}: a style lends to itself or borrows twice")
        borrow[style] = tuple(names)
    return borrow


def check_borrow(borrow: Mapping[str, Sequence[str]], styles: Sequence[str]) -> None:
    """Raises BorrowError unless every borrowing style and lender is one of ``styles``."""
    unknown = sorted({s for style, lenders in borrow.items() for s in (style, *lenders)}
                     - set(styles))
    if unknown:
        raise BorrowError(f"--borrow names {', '.join(unknown)}, which has no training songs "
                          f"(styles: {', '.join(styles)})")


def with_lender_columns(rows: np.ndarray, lender: str | None,
                        lenders: Sequence[str]) -> np.ndarray:
    """float32 (n, columns + len(lenders)): ``rows`` (n, columns) with one column per lender,
    1 in ``lender``'s column (None: the borrowing style's own notes, all 0)."""
    extra = np.zeros((len(rows), len(lenders)), np.float32)
    if lender is not None:
        extra[:, list(lenders).index(lender)] = 1
    return np.hstack([np.asarray(rows, np.float32), extra])


def balanced_weights(own: int, lent: int) -> np.ndarray:
    """float64 (own + lent,) sample weights, the style's ``own`` rows first: each of them
    ``lent / own``, each lent row 1, so both weigh the same in total."""
    return np.concatenate([np.full(own, lent / max(own, 1)), np.ones(lent)])
