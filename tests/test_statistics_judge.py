"""stylenet_jax.statistics_judge: excerpt statistics mean what their names say, and the tree
judge tells apart only what differs."""

import numpy as np
import pytest

from stylenet_jax import human_classifier, midi, statistics_judge as sj

NAMES = sj.STATISTIC_NAMES


def excerpt(velocity, pitch, start) -> human_classifier.Pair:
    """A Pair of notes at ``start`` ticks (480 a beat, 120 a 1/16 step), a step long."""
    n = len(velocity)
    start = np.asarray(start, np.int64)
    notes = midi.Notes(np.asarray(pitch, np.int16), start, start + 120,
                       np.asarray(velocity, np.uint8), np.zeros(n, np.uint8),
                       np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
    v = np.asarray(velocity, np.int64)
    return human_classifier.Pair(notes, start / 960.0, 480, v, v, "piece")


def test_statistics_of_a_chord_a_repeat_and_a_phrase():
    # a three-note chord (top note loudest), then a line that repeats one velocity
    pair = excerpt([50, 60, 70, 40, 40, 80, 80, 80, 60, 60],
                   [48, 52, 55, 60, 62, 64, 65, 67, 69, 71],
                   [0, 0, 0, 120, 240, 360, 480, 600, 720, 840])
    got = dict(zip(NAMES, sj.statistics(pair, pair.human)))
    assert len(got) == len(NAMES)
    assert got["mean"] == pytest.approx(62.0) and got["sd"] == pytest.approx(np.std(pair.human))
    assert got["share of repeated velocities"] == pytest.approx(4 / 9)  # 4 of 9 steps are 0
    assert got["sd within chords"] == pytest.approx(np.std([-10.0, 0.0, 10.0]))
    assert got["share of chords led by the top note"] == 1.0
    assert got["top note minus chord mean"] == pytest.approx(10.0)
    assert got["distinct velocities per note"] == pytest.approx(5 / 10)
    assert got["share of even velocities"] == 1.0
    louder_bottom = sj.statistics(pair, np.r_[[90], pair.human[1:]])
    assert dict(zip(NAMES, louder_bottom))["share of chords led by the top note"] == 0.0


def test_a_flat_excerpt_has_finite_statistics():
    pair = excerpt([64] * 12, np.arange(60, 72), np.arange(12) * 120)
    got = sj.statistics(pair, pair.human)
    assert np.isfinite(got).all()
    assert dict(zip(NAMES, got))["lag-1 correlation"] == 0.0


def pairs_of(system_of, count: int, seed: int) -> list[human_classifier.Pair]:
    """``count`` random excerpts, two pieces each side; ``system_of(human)`` plays each."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        human = rng.integers(30, 100, 24)
        pair = excerpt(human, rng.integers(40, 90, 24), np.arange(24) * 120)
        out.append(pair._replace(system=system_of(human), piece=f"p{k % 8}"))
    return out


def test_the_tree_judge_finds_a_flattened_system_and_not_the_pianist_himself():
    flattened = pairs_of(lambda h: np.round(64 + 0.3 * (h - 64)).astype(np.int64), 160, 0)
    train, test = human_classifier.split_pieces(flattened, 0.5, 0)
    result = sj.tree_judge(train, test, seed=0, iterations=50)
    assert result["accuracy"] >= 0.95 and result["pairs"] == len(test)
    assert result["pieces"] == 4 and result["ci95"][0] <= result["accuracy"] <= result["ci95"][1]
    himself = pairs_of(lambda h: h, 40, 1)
    train, test = human_classifier.split_pieces(himself, 0.5, 0)
    assert sj.tree_judge(train, test, seed=0, iterations=50)["accuracy"] == 0.5  # every tie


def test_effects_are_mean_differences_in_standard_deviations_and_the_judge_gives_them():
    differences = np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0], [-1.0, 2.0, 0.0]])
    np.testing.assert_allclose(sj.effects(differences),
                               [1.0 / np.std([1, 3, -1]), sj.MAX_EFFECT, 0.0])
    louder = pairs_of(lambda h: h + 5, 40, 2)
    train, test = human_classifier.split_pieces(louder, 0.5, 0)
    result = sj.tree_judge(train, test, seed=0, iterations=20)
    np.testing.assert_allclose(result["differences"], sj._differences(test))
    got = dict(zip(NAMES, sj.effects(result["differences"])))
    assert got["mean"] == -sj.MAX_EFFECT  # exactly 5 louder in every pair: no spread at all
    np.testing.assert_allclose(result["differences"][:, NAMES.index("mean")], -5.0)
    both = human_classifier.score_both_halves(
        louder, seed=0, judge=lambda tr, te, seed: sj.tree_judge(tr, te, seed=seed, iterations=20))
    assert both["differences"].shape == (len(louder), len(NAMES))


def test_a_constant_float32_column_correlates_with_nothing():
    constant = np.full(50, np.float32(np.log1p(3.0)))
    assert constant.std() > 0  # float32 rounding: not exactly 0, though every value is equal
    with np.errstate(all="raise"):
        assert sj.correlation(np.arange(50.0), constant) == 0.0
    assert sj.correlation(np.arange(50.0), np.arange(50.0) * 2) == pytest.approx(1.0)
