"""How close a performance's velocities are to a human's (pure numpy).

Note level (MIDI velocity units, one value per note, pooled over the pieces of a style):
MAE, RMSE, Pearson r, Spearman rho, the median over pieces of each piece's r, the ratio of
predicted to human standard deviation (below 1: compressed dynamics), the 1-D Wasserstein
distance between the two velocity distributions, dynamic range (p95 - p5) and distinct
velocities of each side.

The paper's figure: MSE of velocity / 127 over the whole (T, 88) matrix of a piece, and over
its sounding cells only.

Uncertainty: ``score`` gives 95% intervals by bootstrap over pieces (pieces are resampled with
replacement and their notes pooled), computed from per-piece sums so that thousands of
resamples cost milliseconds. ``paired_difference`` does the same for the difference between
two systems on the same performances (both scored on each resample), which is far tighter
than comparing their separate intervals: the pieces that are hard for one are hard for both.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np

# Per-piece sums from which the pooled note metrics of any set of pieces follow.
_SUMS = ("n", "h", "p", "hh", "pp", "hp", "abs", "sq")
BOOTSTRAP_METRICS = ("mae", "rmse", "pearson_r", "std_ratio", "median_piece_r",
                     "mse_matrix", "mse_sounding")


class PieceComparison(NamedTuple):
    """One piece performed by a system, beside the human.

    human, predicted: int (n,) MIDI velocities of the same n notes (1..127).
    se_matrix, cells_matrix: summed squared error of velocity / 127 over the whole (T, 88)
      matrix, and its number of cells (T * 88); se_sounding, cells_sounding: the same over
      sounding cells. NaN / 0 where no matrix was compared.
    """

    piece: str
    human: np.ndarray
    predicted: np.ndarray
    se_matrix: float = float("nan")
    cells_matrix: int = 0
    se_sounding: float = float("nan")
    cells_sounding: int = 0


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length arrays; NaN if either is constant or n < 2."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt((da * da).sum() * (db * db).sum())
    return float((da * db).sum() / denom) if denom > 0 else float("nan")


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` (n,), ties sharing the mean of their ranks; float64 (n,)."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    first = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.concatenate([starts[1:], [len(x)]])
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(x), np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson r of the average ranks."""
    return pearson(average_ranks(a), average_ranks(b))


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein (earth mover's) distance between the empirical distributions of a and b
    (any lengths): the integral of |F_a - F_b| over the values."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if not len(a) or not len(b):
        return float("nan")
    values = np.concatenate([a, b])
    values.sort(kind="mergesort")
    widths = np.diff(values)
    cdf_a = np.searchsorted(a, values[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, values[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


def dynamic_range(v: np.ndarray) -> float:
    """p95 - p5 of the velocities (MIDI units)."""
    return float(np.percentile(v, 95) - np.percentile(v, 5)) if len(v) else float("nan")


def note_metrics(human: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Every note-level figure for pooled notes: int or float (n,) each, same notes."""
    h, p = np.asarray(human, np.float64), np.asarray(predicted, np.float64)
    if h.shape != p.shape:
        raise ValueError(f"human {h.shape} and predicted {p.shape} differ in shape")
    err = p - h
    hs, ps = h.std(), p.std()
    return {"notes": int(len(h)),
            "mae": float(np.abs(err).mean()) if len(h) else float("nan"),
            "rmse": float(np.sqrt((err ** 2).mean())) if len(h) else float("nan"),
            "pearson_r": pearson(h, p), "spearman_rho": spearman(h, p),
            "std_ratio": float(ps / hs) if hs > 0 else float("nan"),
            "wasserstein": wasserstein_1d(h, p),
            "mean_human": float(h.mean()) if len(h) else float("nan"),
            "mean_predicted": float(p.mean()) if len(h) else float("nan"),
            "range_human": dynamic_range(h), "range_predicted": dynamic_range(p),
            "distinct_human": int(len(np.unique(h))),
            "distinct_predicted": int(len(np.unique(p)))}


def _piece_sums(c: PieceComparison) -> np.ndarray:
    h, p = np.asarray(c.human, np.float64), np.asarray(c.predicted, np.float64)
    return np.array([len(h), h.sum(), p.sum(), (h * h).sum(), (p * p).sum(), (h * p).sum(),
                     np.abs(p - h).sum(), ((p - h) ** 2).sum()])


def piece_sums(comparisons: Sequence[PieceComparison]) -> tuple[list[str], np.ndarray]:
    """Each performance's piece and its note sums: (pieces, float64 (performances, 8)), the
    input of ``paired_difference`` (JSON-friendly with ``.tolist()``)."""
    return ([c.piece for c in comparisons],
            np.stack([_piece_sums(c) for c in comparisons]) if comparisons
            else np.zeros((0, len(_SUMS))))


PAIRED_METRICS = ("mae", "rmse", "pearson_r", "std_ratio")
MIN_VARIANCE = 1e-6  # velocity units squared: below it, summed floats of a constant system


def _bootstrap_weights(piece_of: Sequence[str], resamples: int, seed: int) -> np.ndarray:
    """(resamples, performances) float64: how often each performance's piece was drawn when
    the pieces are resampled with replacement (a piece's performances go together)."""
    pieces = sorted(set(piece_of))
    index = {p: i for i, p in enumerate(pieces)}
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(len(pieces), np.full(len(pieces), 1.0 / len(pieces)),
                            size=resamples)
    return drawn[:, [index[p] for p in piece_of]].astype(np.float64)


def paired_difference(piece_of: Sequence[str], sums_a: np.ndarray, sums_b: np.ndarray, *,
                      resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """B minus A on the same performances: ``{metric: b - a, metric_lo, metric_hi}`` for each
    of ``PAIRED_METRICS`` (95% bootstrap over pieces, both systems on each resample), and
    ``"pieces"``. piece_of: each performance's piece (performances,); sums_a, sums_b: float
    (performances, 8) from ``piece_sums`` of the two systems, rows in the same order."""
    sums_a, sums_b = np.asarray(sums_a, np.float64), np.asarray(sums_b, np.float64)
    if sums_a.shape != sums_b.shape or sums_a.shape != (len(piece_of), len(_SUMS)):
        raise ValueError(f"paired sums must both be ({len(piece_of)}, {len(_SUMS)}), got "
                         f"{sums_a.shape} and {sums_b.shape}")
    if not np.array_equal(sums_a[:, :2], sums_b[:, :2]):  # n and the human velocities' sum
        raise ValueError("paired sums are not of the same performances (their notes differ)")
    if not len(piece_of):
        raise ValueError("no performances to compare")
    point_a, point_b = _from_sums(sums_a.sum(0)), _from_sums(sums_b.sum(0))
    weights = _bootstrap_weights(piece_of, resamples, seed)
    boot_a, boot_b = _from_sums(weights @ sums_a), _from_sums(weights @ sums_b)
    out: dict[str, float] = {"pieces": len(set(piece_of))}
    for name in PAIRED_METRICS:
        out[name] = float(point_b[name] - point_a[name])
        diff = boot_b[name] - boot_a[name]
        diff = diff[np.isfinite(diff)]
        lo, hi = np.percentile(diff, [2.5, 97.5]) if len(diff) else (np.nan, np.nan)
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return out


def _from_sums(s: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled figures from summed per-piece sums (..., 8)."""
    n, h, p, hh, pp, hp, ab, sq = np.moveaxis(s, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_h, var_p = hh / n - (h / n) ** 2, pp / n - (p / n) ** 2
        cov = hp / n - (h / n) * (p / n)
        spread = (var_h > MIN_VARIANCE) & (var_p > MIN_VARIANCE)  # a constant has no r
        return {"mae": ab / n, "rmse": np.sqrt(sq / n),
                "pearson_r": np.where(spread, cov / np.sqrt(var_h * var_p), np.nan),
                "std_ratio": np.sqrt(np.maximum(var_p, 0) / var_h)}


def _ratio(se: np.ndarray, cells: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cells > 0, se / np.maximum(cells, 1), np.nan)


def score(comparisons: Sequence[PieceComparison], *, resamples: int = 2000,
          seed: int = 0) -> dict[str, float]:
    """Pooled note metrics, the median piece r and the matrix MSEs of a set of pieces, with
    ``<metric>_lo`` / ``<metric>_hi`` 95% bootstrap intervals (over pieces) for each of
    ``BOOTSTRAP_METRICS``, ``pieces`` and ``notes``."""
    if not comparisons:
        raise ValueError("no pieces to score")
    human = np.concatenate([c.human for c in comparisons])
    predicted = np.concatenate([c.predicted for c in comparisons])
    out: dict[str, float] = {"pieces": len({c.piece for c in comparisons}),
                             "performances": len(comparisons), **note_metrics(human, predicted)}
    piece_r = np.array([pearson(c.human, c.predicted) for c in comparisons])
    out["median_piece_r"] = float(np.nanmedian(piece_r)) if np.isfinite(piece_r).any() \
        else float("nan")
    se_m = np.array([c.se_matrix for c in comparisons], np.float64)
    cells_m = np.array([c.cells_matrix for c in comparisons], np.float64)
    se_s = np.array([c.se_sounding for c in comparisons], np.float64)
    cells_s = np.array([c.cells_sounding for c in comparisons], np.float64)
    out["mse_matrix"] = float(_ratio(np.nansum(se_m), cells_m.sum()))
    out["mse_sounding"] = float(_ratio(np.nansum(se_s), cells_s.sum()))

    # Resample pieces with replacement (a piece's performances go together: they share its
    # notes); weights (B, performances) count how often each performance's piece was drawn.
    weights = _bootstrap_weights([c.piece for c in comparisons], resamples, seed)
    sums = weights @ piece_sums(comparisons)[1]
    boot = _from_sums(sums)
    boot["mse_matrix"] = _ratio(weights @ np.nan_to_num(se_m), weights @ cells_m)
    boot["mse_sounding"] = _ratio(weights @ np.nan_to_num(se_s), weights @ cells_s)
    finite_r = np.isfinite(piece_r)
    boot["median_piece_r"] = np.array([_weighted_median(piece_r[finite_r], w[finite_r])
                                       for w in weights])
    for name in BOOTSTRAP_METRICS:
        values = boot[name][np.isfinite(boot[name])]
        lo, hi = np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan)
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` each repeated ``weights`` times (integer weights, float64)."""
    keep = weights > 0
    if not keep.any():
        return float("nan")
    return float(np.median(np.repeat(values[keep], weights[keep].astype(np.int64))))


def score_by_style(comparisons: Mapping[str, Sequence[PieceComparison]], *,
                   resamples: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    """``score`` per style, plus ``"all"`` over every style's pieces."""
    out = {style: score(items, resamples=resamples, seed=seed)
           for style, items in comparisons.items() if items}
    everything = [c for items in comparisons.values() for c in items]
    if everything:
        out["all"] = score(everything, resamples=resamples, seed=seed)
    return out
