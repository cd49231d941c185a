"""Differentiable statistics of excerpts (stylenet_jax.excerpt_statistics): the scorers' extra
columns, and the trees' statistics the learned scatter can be charged to match."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylenet_jax import excerpt_statistics as es
from stylenet_jax import human_classifier as hc
from stylenet_jax import learned_scatter as ls
from stylenet_jax import scatter_training as st
from stylenet_jax import statistics_judge as sj
from stylenet_jax.notes import Notes
from stylenet_jax.performances import Performed

TPB = 4
IN_VELOCITY_UNITS = ("sd", "mean |step|", "sd within chords", "top note minus chord mean",
                     "sd of the phrase level", "sd around the phrase level")


def chords_of_many_lengths(seed: int) -> Performed:
    """200 chords of 1-3 notes, 1-4 steps apart, each note 1-7 steps long, velocities 25-109:
    every statistic varies."""
    rng = np.random.default_rng(seed)
    starts, pitches, ends = [], [], []
    for step in np.cumsum(rng.integers(1, 5, 200)):
        size = 1 + rng.integers(3)
        starts += [step] * size
        pitches += list(40 + rng.choice(40, size, replace=False))
        ends += list(step + rng.integers(1, 8, size))
    start = np.asarray(starts, np.int64)
    n = len(start)
    notes = Notes(pitch=np.asarray(pitches, np.int16), start=start, end=np.asarray(ends),
                  velocity=rng.integers(25, 110, n).astype(np.uint8),
                  channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                  index=np.arange(n, dtype=np.int32))
    return Performed("a", "jazz", "a", "a.mid", notes, TPB, start * 0.125)


@pytest.mark.slow  # 11 s on 2 cores; in CI (--runslow), outside the default suite
def test_matched_statistics_are_the_trees_statistics_of_each_excerpt():
    perf = chords_of_many_lengths(0)
    flat = np.full(len(perf.notes), 64)
    data = st.excerpt_arrays([perf], [flat], ["jazz"], max_notes=128)
    arrays = [jnp.asarray(a) for a in (data.context, data.groups, data.mask)]
    human = np.asarray(es.matched_statistics(jnp.asarray(data.human), *arrays))
    system = np.asarray(es.matched_statistics(jnp.asarray(data.system), *arrays))
    units = np.asarray([127.0 if name in IN_VELOCITY_UNITS else 1.0
                        for name in es.MATCHED_STATISTICS])
    columns = [sj.STATISTIC_NAMES.index(name) for name in es.MATCHED_STATISTICS]
    inputs = ls.note_inputs(perf.notes, TPB, perf.seconds)
    ordered, seconds = perf.notes.select(inputs.order), perf.seconds[inputs.order]
    windows = hc.excerpts(seconds)
    assert human.shape == (len(windows), len(es.MATCHED_STATISTICS)) and len(windows) > 2
    for row, idx in enumerate(windows):
        notes = ordered.select(idx)
        pair = hc.Pair(notes, seconds[idx], TPB, notes.velocity.astype(np.int64),
                       np.full(len(idx), 64), "a")
        shared = sj.layout(pair)
        np.testing.assert_allclose(human[row] * units,
                                   sj.statistics(pair, pair.human, shared)[columns],
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(system[row] * units,  # one velocity: no spread, no r
                                   sj.statistics(pair, pair.system, shared)[columns], atol=1e-3)
    grad = jax.grad(lambda v: es.matched_statistics(v, *arrays).sum())(jnp.asarray(data.system))
    assert np.isfinite(np.asarray(grad)).all()  # even at one velocity everywhere


def test_the_gap_charges_each_styles_systematic_offset_in_units_of_its_scale():
    human = jnp.asarray(np.random.default_rng(1).normal(size=(6, 3)), jnp.float32)
    style = jnp.asarray(np.eye(3)[[0, 0, 0, 1, 1, 1]], jnp.float32)  # style 2 absent
    scale = jnp.asarray([1.0, 2.0, 4.0])
    assert float(es.statistics_gap(human, human, style, scale)) == 0.0
    offset = jnp.asarray([[0.0, 1.0, 0.0]] * 3 + [[0.0, 0.0, 2.0]] * 3)
    # style 0: (1/2)^2; style 1: (2/4)^2; averaged over the two styles present
    assert float(es.statistics_gap(human + offset, human, style, scale)) == pytest.approx(0.25)
    one_style = es.statistics_gap(human[:3] + offset[:3], human[:3], style[:3], scale)
    assert float(one_style) == pytest.approx(0.25)  # absent styles do not dilute it
    alone = jnp.asarray(np.eye(3)[[0, 1, 1]], jnp.float32)  # style 0: one excerpt, no pair
    assert float(es.statistics_gap(human[:3] + 1.0, human[:3], alone, scale)) == pytest.approx(
        1.0 + 1 / 4 + 1 / 16)


def test_the_gap_estimates_the_squared_offset_without_the_batchs_noise():
    """Differences of offset 0.5 and sd 1 over batches of 4: the plain square of the batch
    mean averages 0.25 + 1/4, the gap 0.25; with no offset it averages 0."""
    noise = jnp.asarray(np.random.default_rng(2).normal(size=(4000, 4, 1)), jnp.float32)
    gap = jax.vmap(lambda d: es.statistics_gap(d, jnp.zeros((4, 1)), jnp.ones((4, 1)),
                                               jnp.ones(1)))
    for offset in (0.5, 0.0):
        gaps = np.asarray(gap(offset + noise))
        assert gaps.mean() == pytest.approx(offset ** 2, abs=0.03)
        assert gaps.min() < 0  # one batch's estimate may be below 0


def test_velocity_sharing_counts_the_notes_at_each_velocity_and_its_mean_the_distinct_ones():
    velocity = jnp.asarray([[64, 64, 64, 80, 30, 0], [50, 51, 0, 0, 0, 0]], jnp.float32) / 127
    mask = jnp.asarray([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]], bool)
    sharing = np.asarray(es.velocity_sharing(velocity, mask))
    np.testing.assert_allclose(sharing[0], [1 / 3, 1 / 3, 1 / 3, 1, 1, 0], rtol=1e-5)
    assert sharing[0].sum() / 5 == pytest.approx(3 / 5)  # 3 distinct velocities in 5 notes
    neighbours = 1 / (1 + np.exp(-2.0))  # one unit apart: exp(-(1 / 0.5)^2 / 2) of a note
    np.testing.assert_allclose(sharing[1], [neighbours, neighbours, 0, 0, 0, 0], rtol=1e-5)
    grad = jax.grad(lambda v: es.velocity_sharing(v, mask).sum())(velocity)
    assert np.isfinite(np.asarray(grad)).all() and np.asarray(grad)[1, 0] < 0  # nearer: fewer
    plain = st.classifier_features(velocity, jnp.zeros((2, 6, 5)), jnp.zeros((2, 6), jnp.int32),
                                   mask)
    more = st.classifier_features(velocity, jnp.zeros((2, 6, 5)), jnp.zeros((2, 6), jnp.int32),
                                  mask, columns=("velocity_sharing",))
    assert more.shape == (2, 6, hc.NUM_FEATURES + 1)
    np.testing.assert_array_equal(np.asarray(more[..., :-1]), np.asarray(plain))
    np.testing.assert_allclose(np.asarray(more[..., -1]), sharing, rtol=1e-6)


def test_duration_coupling_averages_to_the_excerpts_correlation_of_velocity_and_length():
    rng = np.random.default_rng(0)
    velocity = jnp.asarray(rng.integers(20, 110, (2, 9)) / 127, jnp.float32)
    context = jnp.asarray(rng.uniform(0, 1, (2, 9, 5)), jnp.float32)
    mask = jnp.asarray([[1] * 9, [1] * 6 + [0] * 3], bool)
    coupling = np.asarray(es.duration_coupling(velocity, context, mask))
    for row, n in enumerate((9, 6)):
        expected = np.corrcoef(np.asarray(velocity[row, :n]),
                               np.asarray(context[row, :n, es.LOG_DURATION_COLUMN]))[0, 1]
        assert coupling[row, :n].mean() == pytest.approx(expected, abs=1e-3)
    assert not coupling[1, 6:].any()  # padding
    flat = jnp.full((1, 4), 64 / 127)  # one velocity, one length: no correlation, no NaN
    still = es.duration_coupling(flat, jnp.zeros((1, 4, 5)), jnp.ones((1, 4), bool))
    grad = jax.grad(lambda v: es.duration_coupling(v, context[:1, :4], mask[:1, :4]).sum())(flat)
    assert not np.asarray(still).any() and np.isfinite(np.asarray(grad)).all()
    both = st.classifier_features(velocity, context, jnp.zeros((2, 9), jnp.int32), mask,
                                  columns=("duration_coupling", "velocity_sharing"))
    assert both.shape == (2, 9, hc.NUM_FEATURES + 2)
    np.testing.assert_allclose(np.asarray(both[..., -2]), coupling, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(both[..., -1]),
                               np.asarray(es.velocity_sharing(velocity, mask)), rtol=1e-6)
    with pytest.raises(ValueError, match="scorer columns"):
        es.check_columns(["duration_coupling", "duration_coupling"])
    with pytest.raises(ValueError, match="scorer columns"):
        es.check_columns(["loudness"])


