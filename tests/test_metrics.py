"""stylenet_jax.metrics on hand-made examples with known answers."""

import numpy as np
import pytest

from stylenet_jax import metrics


def test_perfect_prediction():
    h = np.array([10, 40, 70, 100, 127])
    m = metrics.note_metrics(h, h)
    assert m["mae"] == 0 and m["rmse"] == 0 and m["wasserstein"] == 0
    assert m["pearson_r"] == pytest.approx(1) and m["spearman_rho"] == pytest.approx(1)
    assert m["std_ratio"] == pytest.approx(1) and m["distinct_predicted"] == 5


def test_known_values():
    h = np.array([60, 70, 80, 90])
    p = np.array([65, 70, 75, 80])  # half the spread, mean 5 lower
    m = metrics.note_metrics(h, p)
    assert m["mae"] == pytest.approx((5 + 0 + 5 + 10) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((25 + 0 + 25 + 100) / 4))
    assert m["pearson_r"] == pytest.approx(1)
    assert m["std_ratio"] == pytest.approx(0.5)
    assert m["mean_human"] == 75 and m["mean_predicted"] == 72.5
    # sorted pairs (60,65) (70,70) (80,75) (90,80): mean |difference| of quantiles
    assert m["wasserstein"] == pytest.approx((5 + 0 + 5 + 10) / 4)
    assert m["range_human"] == pytest.approx(np.percentile(h, 95) - np.percentile(h, 5))


def test_anticorrelated_and_constant():
    h = np.array([1, 2, 3, 4])
    assert metrics.pearson(h, -h) == pytest.approx(-1)
    assert metrics.spearman(h, h[::-1]) == pytest.approx(-1)
    m = metrics.note_metrics(h, np.full(4, 64))
    assert np.isnan(m["pearson_r"]) and m["std_ratio"] == 0 and m["distinct_predicted"] == 1


def test_spearman_with_ties_matches_definition():
    a = np.array([1, 2, 2, 3, 5, 5, 5])
    assert list(metrics.average_ranks(a)) == [1, 2.5, 2.5, 4, 6, 6, 6]
    b = np.array([3, 1, 4, 1, 5, 9, 2])
    expected = metrics.pearson(metrics.average_ranks(a), metrics.average_ranks(b))
    assert metrics.spearman(a, b) == pytest.approx(expected)
    # monotone but non-linear: rho 1, r below 1
    x = np.arange(1, 20)
    assert metrics.spearman(x, x ** 3) == pytest.approx(1) and metrics.pearson(x, x ** 3) < 0.95


def test_wasserstein_of_shift_and_unequal_lengths():
    a = np.arange(100)
    assert metrics.wasserstein_1d(a, a + 7) == pytest.approx(7)
    assert metrics.wasserstein_1d([0, 0, 10], [0, 10]) == pytest.approx(10 * (2 / 3 - 1 / 2))


def _piece(name, h, p, **kw):
    return metrics.PieceComparison(name, np.asarray(h), np.asarray(p), **kw)


def test_score_pools_notes_and_gives_piece_median_and_matrix_mse():
    pieces = [_piece("a", [10, 20, 30], [10, 20, 30], se_matrix=1.0, cells_matrix=10,
                     se_sounding=0.5, cells_sounding=2),
              _piece("b", [10, 20, 30], [30, 20, 10], se_matrix=3.0, cells_matrix=30,
                     se_sounding=1.5, cells_sounding=2),
              _piece("c", [50, 60, 70, 80], [55, 60, 65, 70], se_matrix=0.0, cells_matrix=10,
                     se_sounding=0.0, cells_sounding=4)]
    s = metrics.score(pieces, resamples=500)
    pooled = metrics.note_metrics(np.concatenate([p.human for p in pieces]),
                                  np.concatenate([p.predicted for p in pieces]))
    assert s["mae"] == pytest.approx(pooled["mae"]) and s["notes"] == 10
    assert s["median_piece_r"] == pytest.approx(1.0)  # r = 1, -1, 1
    assert s["mse_matrix"] == pytest.approx(4.0 / 50) and s["mse_sounding"] == pytest.approx(0.25)
    assert s["pieces"] == 3
    for name in metrics.BOOTSTRAP_METRICS:
        assert s[f"{name}_lo"] <= s[f"{name}_hi"]
    assert s["mae_lo"] <= s["mae"] <= s["mae_hi"] and s["mae_lo"] < s["mae_hi"]


def test_bootstrap_interval_is_zero_width_when_pieces_agree_and_shrinks_with_more_pieces():
    rng = np.random.default_rng(0)
    same = [_piece(f"p{i}", [10, 50, 90], [20, 50, 80]) for i in range(5)]
    s = metrics.score(same, resamples=200)
    assert s["mae_lo"] == pytest.approx(s["mae_hi"])

    def pieces(n):
        out = []
        for i in range(n):
            h = rng.integers(20, 110, 50)
            out.append(_piece(f"q{i}", h, h + rng.normal(0, rng.uniform(2, 20), 50).round()))
        return out
    few, many = metrics.score(pieces(5), resamples=500), metrics.score(pieces(200), resamples=500)
    assert many["mae_hi"] - many["mae_lo"] < few["mae_hi"] - few["mae_lo"]


def test_performances_of_one_piece_are_resampled_together():
    """Two performances of piece "a" always come together: with only one piece, every resample
    is the whole set and the interval has zero width."""
    s = metrics.score([_piece("a", [10, 50, 90], [20, 50, 80]),
                       _piece("a", [10, 50, 90], [50, 50, 50])], resamples=100)
    assert s["pieces"] == 1 and s["performances"] == 2
    assert s["mae_lo"] == pytest.approx(s["mae"]) == pytest.approx(s["mae_hi"])


def test_score_by_style_adds_all():
    out = metrics.score_by_style({"x": [_piece("a", [1, 2, 3], [1, 2, 4])],
                                  "y": [_piece("b", [5, 6, 7], [5, 6, 7])]}, resamples=50)
    assert set(out) == {"x", "y", "all"} and out["all"]["notes"] == 6


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError):
        metrics.note_metrics(np.arange(3), np.arange(4))


def _noisy_pieces(rng, n, noise):
    """n pieces of 40 notes; predictions = human + per-piece offset + N(0, noise) per note."""
    out = []
    for i in range(n):
        h = rng.integers(20, 110, 40)
        offset = rng.normal(0, 15)  # a hard piece is hard for every system
        out.append((f"p{i}", h, h + offset))
    return [(piece, h, base + rng.normal(0, noise, len(h))) for piece, h, base in out]


def test_paired_difference_is_b_minus_a_and_tighter_than_separate_intervals():
    rng = np.random.default_rng(1)
    pieces = _noisy_pieces(rng, 30, 0.0)
    a = [_piece(name, h, np.clip(np.rint(p + rng.normal(0, 8, len(h))), 1, 127))
         for name, h, p in pieces]
    b = [_piece(name, h, np.clip(np.rint(p + rng.normal(0, 4, len(h))), 1, 127))
         for name, h, p in pieces]
    names, sums_a = metrics.piece_sums(a)
    _, sums_b = metrics.piece_sums(b)
    d = metrics.paired_difference(names, sums_a, sums_b, resamples=1000)
    score_a, score_b = metrics.score(a, resamples=1000), metrics.score(b, resamples=1000)
    assert d["mae"] == pytest.approx(score_b["mae"] - score_a["mae"])
    assert d["pearson_r"] == pytest.approx(score_b["pearson_r"] - score_a["pearson_r"])
    assert d["mae_hi"] < 0 < d["pearson_r_lo"]  # b is better, and the interval says so
    # The separate intervals overlap; the paired one excludes 0.
    assert score_b["mae_hi"] > score_a["mae_lo"]
    assert d["mae_hi"] - d["mae_lo"] < (score_a["mae_hi"] - score_a["mae_lo"]) / 2
    # A system against itself differs by exactly nothing on every resample.
    same = metrics.paired_difference(names, sums_a, sums_a, resamples=200)
    assert same["mae_lo"] == same["mae"] == same["mae_hi"] == 0 and same["pieces"] == 30


def test_paired_difference_refuses_sums_of_other_performances():
    a = [_piece("a", [10, 50, 90], [20, 50, 80])]
    names, sums = metrics.piece_sums(a)
    _, other = metrics.piece_sums([_piece("a", [11, 50, 90], [20, 50, 80])])
    with pytest.raises(ValueError, match="same performances"):
        metrics.paired_difference(names, sums, other)
    with pytest.raises(ValueError, match="must both be"):
        metrics.paired_difference(names, sums, sums[:, :4])
