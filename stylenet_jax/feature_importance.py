"""Where the tree baseline's skill comes from: permutation importance by feature group.

For one style's notes, ``group_importance`` scores the tree as it is, then again with the
columns of one group (``note_features.FEATURE_GROUPS``, plus each optional column set the tree
reads, named by ``extra_label``) shuffled together among the notes, the other columns as they
were: the rise in MAE and the fall in Pearson r is what the tree loses when that group no longer
says anything about each note. Shuffled among all the style's notes (``SCOPES[0]``), a column
that is constant within a performance (the piece's mean tempo) still tells one piece from
another; shuffled within each performance (``SCOPES[1]``) it tells nothing, and what is left is
what the group says about one note against the others of its piece. A group's columns move
together, since one column alone is mostly stood in for by its neighbours (the three rolling
windows, the four density spans): scikit-learn's ``permutation_importance`` shuffles one column
at a time. Pure numpy around the fitted trees.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from stylenet_jax.feature_baseline import (EXTRA_COLUMNS, FeatureBaseline, extra_label,
                                           feature_names, feature_rows, mae_and_r,
                                           ordered_extras, velocity_targets)
from stylenet_jax.note_features import FEATURE_GROUPS
from stylenet_jax.performances import Performed

SCOPES = ("style", "performance")  # among whose notes a group is shuffled


def group_columns(extras: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """{group: int64 column indices} over the columns of a tree reading ``extras``, in column
    order; every column in exactly one group."""
    index = {name: i for i, name in enumerate(feature_names(extras))}
    groups = {group: np.array([index[n] for n in members], np.int64)
              for group, members in FEATURE_GROUPS.items()}
    for extra in ordered_extras(extras):
        groups[extra_label(extra)] = np.array([index[n] for n in EXTRA_COLUMNS[extra][0]],
                                               np.int64)
    return groups


def _shuffled_order(sizes: Sequence[int], within_each: bool,
                    rng: np.random.Generator) -> np.ndarray:
    """int64 (sum(sizes),) row order: one permutation of all rows, or, ``within_each``, of
    each block of ``sizes`` consecutive rows in its own place."""
    if not within_each:
        return rng.permutation(int(np.sum(sizes)))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return np.concatenate([start + rng.permutation(size) for start, size in zip(starts, sizes)])


def group_importance(baseline: FeatureBaseline, performed: Sequence[Performed],
                     repeats: int = 3, seed: int = 0, scope: str = SCOPES[0],
                     log: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Per style of ``performed`` that the tree plays, in style order:

    {style, songs, notes, mae, r, groups: [{group, columns, mae_increase, mae_increase_sd,
    r_drop, r_drop_sd}]}, groups in ``group_columns`` order. mae and r score the tree as it is
    over the style's notes; each group's figures are the mean and standard deviation over
    ``repeats`` shuffles (seeded by ``seed``, the repeat and the group) of the score with the
    group's columns shuffled together minus the score as it is (r_drop: as it is minus
    shuffled, so both are positive where the group helps). ``scope``: shuffled among all the
    style's notes or within each performance (``SCOPES``).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    groups = group_columns(baseline.extras)
    out = []
    for style in sorted({p.style for p in performed} & set(baseline.styles)):
        songs = [p for p in performed if p.style == style and len(p.notes)]
        if not songs:
            continue
        rows = np.concatenate([feature_rows(p.notes, p.ticks_per_beat, p.seconds,
                                            baseline.extras) for p in songs])
        human = np.concatenate([velocity_targets(p.notes.velocity) for p in songs])
        sizes = [len(p.notes) for p in songs]
        mae, r = mae_and_r(baseline.predict_rows(rows, style), human)
        found = []
        for g, (group, columns) in enumerate(groups.items()):
            rises, drops = [], []
            for k in range(repeats):
                order = _shuffled_order(sizes, scope == SCOPES[1],
                                        np.random.default_rng([seed, k, g]))
                shuffled = rows.copy()
                shuffled[:, columns] = rows[np.ix_(order, columns)]
                mae_k, r_k = mae_and_r(baseline.predict_rows(shuffled, style), human)
                rises.append(mae_k - mae)
                drops.append(r - r_k)
            found.append({"group": group, "columns": len(columns),
                          "mae_increase": float(np.mean(rises)),
                          "mae_increase_sd": float(np.std(rises)),
                          "r_drop": float(np.mean(drops)), "r_drop_sd": float(np.std(drops))})
        log(f"{style}: {len(songs)} songs, {len(rows):,} notes, MAE {mae:.2f}, r {r:.3f}")
        out.append({"style": style, "songs": len(songs), "notes": len(rows), "mae": mae,
                    "r": r, "groups": found})
    return out
