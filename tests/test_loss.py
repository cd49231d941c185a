"""stylenet_jax.loss: which cells each loss mode counts, on hand-made arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylenet_jax.config import BAR_STEPS
from stylenet_jax.loss import (SPREAD_EPSILON, level_error, masked_error, masked_mse,
                               spread_gap)


def test_masked_mse_ignores_padding_and_other_heads():
    rng = np.random.default_rng(0)
    s, n, t = 3, 2, 5
    vel = rng.random((s, n, t, 88)).astype(np.float32)
    targets = rng.random((n, t, 88)).astype(np.float32)
    lengths = np.array([5, 3], np.int32)
    heads = np.array([2, 0], np.int32)
    inputs = np.zeros((n, t, 176), np.uint8)
    loss, se, cells = masked_mse(vel, targets, lengths, heads, inputs)
    expected = (np.sum((vel[2, 0] - targets[0]) ** 2) + np.sum((vel[0, 1, :3] - targets[1, :3])
                                                                ** 2)) / (8 * 88)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(cells, [5 * 88, 3 * 88])
    garbage = vel.copy()
    garbage[1] = 9.0  # a head no row uses
    garbage[0, 0] = 9.0  # row 0 uses head 2
    garbage[0, 1, 3:] = 9.0  # row 1's padded steps
    targets2 = targets.copy()
    targets2[1, 3:] = -4.0
    loss2, se2, _ = masked_mse(garbage, targets2, lengths, heads, inputs)
    np.testing.assert_allclose(loss2, loss, rtol=1e-6)
    np.testing.assert_allclose(se2, se, rtol=1e-6)


def test_masked_mse_active_cells_only():
    vel = jnp.full((1, 1, 4, 88), 0.5)
    targets = jnp.zeros((1, 4, 88))
    inputs = np.zeros((1, 4, 176), np.uint8)
    inputs[0, 0, 2 * 7 + 1] = 1  # key 7 held at step 0
    inputs[0, 1, 2 * 9] = 1  # an onset bit alone does not count
    inputs[0, 3, 2 * 3 + 1] = 1  # held, but past the length
    loss, _, cells = masked_mse(vel, targets, jnp.array([3]), jnp.array([0]), inputs,
                                         "active")
    assert float(cells[0]) == 1.0
    np.testing.assert_allclose(loss, 0.25)


def test_masked_mse_onset_cells_only():
    """--loss=onset scores the cells whose played-now bit is set, on real steps only; a
    sustained cell (held bit alone) does not count."""
    vel = jnp.full((1, 1, 4, 88), 0.5)
    targets = jnp.zeros((1, 4, 88)).at[0, 0, 7].set(1.0)
    inputs = np.zeros((1, 4, 176), np.uint8)
    inputs[0, 0, 2 * 7: 2 * 7 + 2] = 1  # key 7 starts at step 0 (error 0.5)
    inputs[0, 1, 2 * 7 + 1] = 1  # ... and is held at step 1: not an onset
    inputs[0, 2, 2 * 9: 2 * 9 + 2] = 1  # key 9 starts at step 2 (error 0.5)
    inputs[0, 3, 2 * 3: 2 * 3 + 2] = 1  # an onset past the length
    loss, se, cells = masked_mse(vel, targets, jnp.array([3]), jnp.array([0]), inputs,
                                          "onset")
    assert float(cells[0]) == 2.0
    np.testing.assert_allclose(se[0], 0.5, rtol=1e-6)
    np.testing.assert_allclose(loss, 0.25, rtol=1e-6)


def test_masked_error_absolute_counts_each_cell_once():
    """--error=absolute: |prediction - target| per counted cell, so a cell 0.4 off weighs
    4 times one 0.1 off (squared: 16 times), and a too-low guess costs what a too-high one
    does; the squared error of the same arrays is masked_mse's."""
    vel = jnp.zeros((1, 1, 2, 88)).at[0, 0, 0, 7].set(0.9).at[0, 0, 1, 9].set(0.1)
    targets = jnp.zeros((1, 2, 88)).at[0, 0, 7].set(0.5).at[0, 1, 9].set(0.2)
    inputs = np.zeros((1, 2, 176), np.uint8)
    inputs[0, 0, 2 * 7: 2 * 7 + 2] = 1
    inputs[0, 1, 2 * 9: 2 * 9 + 2] = 1
    args = (vel, targets, jnp.array([2]), jnp.array([0]), inputs, "onset")
    loss, se, cells = masked_error(*args, "absolute")
    assert float(cells[0]) == 2.0
    np.testing.assert_allclose(se[0], 0.4 + 0.1, rtol=1e-5)
    np.testing.assert_allclose(loss, 0.25, rtol=1e-5)
    squared, _, _ = masked_error(*args, "squared")
    np.testing.assert_allclose(squared, masked_mse(*args)[0], rtol=1e-6)
    np.testing.assert_allclose(squared, (0.16 + 0.01) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="error must be one of"):
        masked_error(*args, "huber")


def test_absolute_error_gradient_moves_toward_the_median():
    """The gradient of the absolute error pulls a shared guess toward the targets' median
    (here below it: two of three targets are lower), the squared error's toward their mean
    (here above it)."""
    targets = jnp.zeros((1, 3, 88)).at[0, :, 0].set(jnp.array([0.2, 0.3, 1.0]))
    inputs = np.zeros((1, 3, 176), np.uint8)
    inputs[0, :, 0:2] = 1

    def loss_at(guess, error):
        vel = jnp.full((1, 1, 3, 88), guess)
        return masked_error(vel, targets, jnp.array([3]), jnp.array([0]), inputs, "onset",
                            error)[0]

    guess = 0.4  # above the median 0.3, below the mean 0.5
    assert float(jax.grad(loss_at)(guess, "absolute")) > 0  # descent lowers it
    assert float(jax.grad(loss_at)(guess, "squared")) < 0  # descent raises it


def test_masked_mse_empty_batch_is_zero():
    loss, _, _ = masked_mse(jnp.ones((1, 2, 3, 88)), jnp.zeros((2, 3, 88)),
                                     jnp.zeros((2,), jnp.int32), jnp.zeros((2,), jnp.int32),
                                     jnp.zeros((2, 3, 176)))
    assert float(loss) == 0.0


def _onsets(n, t, keys):
    inputs = np.zeros((n, t, 176), np.uint8)
    for step, key in keys:
        inputs[:, step, 2 * key] = inputs[:, step, 2 * key + 1] = 1
    return inputs


def test_spread_gap_is_the_squared_difference_of_window_sds():
    keys = [(0, 10), (1, 20), (2, 30), (3, 40)]
    inputs = _onsets(2, 5, keys)
    targets = np.zeros((2, 5, 88), np.float32)
    for (step, key), v in zip(keys, [0.2, 0.4, 0.6, 0.8]):
        targets[:, step, key] = v
    flat = np.full((1, 2, 5, 88), 0.5, np.float32)  # every onset at the mean: no spread
    lengths, heads = np.array([5, 5], np.int32), np.zeros(2, np.int32)
    gap = float(spread_gap(flat, targets, lengths, heads, inputs, "onset"))
    sd, eps = np.std([0.2, 0.4, 0.6, 0.8]), SPREAD_EPSILON  # eps keeps sqrt's gradient finite
    np.testing.assert_allclose(gap, (np.sqrt(sd ** 2 + eps) - np.sqrt(eps)) ** 2, rtol=1e-4)
    exact = float(spread_gap(targets[None], targets, lengths, heads, inputs, "onset"))
    assert exact < 1e-9
    # Only the counted cells and real steps matter: a row of one onset has no spread to
    # match, and a step past the length is not counted.
    short = np.array([5, 1], np.int32)
    garbage = targets[None].copy()
    garbage[0, 1, 1:] = 7.0
    assert float(spread_gap(garbage, targets, short, heads, inputs, "onset")) < 1e-9


def test_spread_gap_pushes_a_compressed_prediction_apart():
    keys = [(s, 10 + s) for s in range(8)]
    inputs = _onsets(1, 8, keys)
    targets = np.zeros((1, 8, 88), np.float32)
    for step, key in keys:
        targets[0, step, key] = 0.2 + 0.08 * step
    compressed = 0.5 + 0.3 * (targets - 0.5)  # same order, a third of the spread

    def gap(pred):
        return spread_gap(pred[None], targets, jnp.array([8]), jnp.array([0]), inputs, "onset")

    grad = np.asarray(jax.grad(gap)(jnp.asarray(compressed)))
    loud, quiet = keys[-1], keys[0]
    assert grad[0, loud[0], loud[1]] < 0 < grad[0, quiet[0], quiet[1]]  # loud up, quiet down
    moved = compressed - 0.5 * grad
    assert float(gap(jnp.asarray(moved))) < float(gap(jnp.asarray(compressed)))


def test_spread_gap_over_steps_takes_each_steps_mean_and_ignores_voicing():
    """--spread_of=steps: one value per step with an onset, the mean of its onsets; a chord
    voiced wider about the same mean changes the notes' spread, not the steps'."""
    keys = [(0, 10), (0, 20), (1, 30), (2, 40), (2, 50), (2, 60)]
    inputs = _onsets(1, 4, keys)
    targets = np.zeros((1, 4, 88), np.float32)
    for (step, key), v in zip(keys, [0.3, 0.5, 0.2, 0.6, 0.7, 0.8]):
        targets[0, step, key] = v
    flat = np.full((1, 1, 4, 88), 0.5, np.float32)
    lengths, heads = np.array([4], np.int32), np.zeros(1, np.int32)
    gap = float(spread_gap(flat, targets, lengths, heads, inputs, "onset", "steps"))
    sd, eps = np.std([0.4, 0.2, 0.7]), SPREAD_EPSILON  # the three steps' means
    np.testing.assert_allclose(gap, (np.sqrt(sd ** 2 + eps) - np.sqrt(eps)) ** 2, rtol=1e-4)

    voiced = targets[None].copy()  # step 0's chord split wider: 0.3, 0.5 -> 0.1, 0.7
    voiced[0, 0, 0, 10], voiced[0, 0, 0, 20] = 0.1, 0.7
    by_steps = float(spread_gap(voiced, targets, lengths, heads, inputs, "onset", "steps"))
    by_notes = float(spread_gap(voiced, targets, lengths, heads, inputs, "onset", "notes"))
    assert by_steps < 1e-9 < by_notes
    # A step past the length is not counted, and a row of one counted step has no spread.
    assert float(spread_gap(flat, targets, np.array([1], np.int32), heads, inputs, "onset",
                            "steps")) < 1e-9
    with pytest.raises(ValueError, match="spread level"):
        spread_gap(flat, targets, lengths, heads, inputs, "onset", "chords")


def _three_bars():
    """One row of two whole bars and a short one (2 BAR_STEPS + 3 steps) with two onsets in
    each whole bar and one in the last: its inputs, targets (the runs' means 0.5, 0.8, 0.2),
    a flat prediction of 0.5 (1, 1, T, 88), and the row's length and head."""
    t = 2 * BAR_STEPS + 3
    keys = [(0, 60), (5, 30), (BAR_STEPS, 62), (BAR_STEPS + 2, 35), (2 * BAR_STEPS + 1, 50)]
    inputs = _onsets(1, t, keys)
    targets = np.zeros((1, t, 88), np.float32)
    for (step, key), v in zip(keys, [0.6, 0.4, 0.9, 0.7, 0.2]):
        targets[0, step, key] = v
    flat = np.full((1, 1, t, 88), 0.5, np.float32)
    return inputs, targets, flat, np.array([t], np.int32), np.zeros(1, np.int32)


def test_spread_gap_over_bars_takes_each_runs_mean_and_ignores_what_moves_within_it():
    """--spread_of=bars: one value per run of BAR_STEPS steps from the window's start, the
    mean of its onsets (the last run may be short); melody against bass inside a bar does
    not count, a bar's level does."""
    inputs, targets, flat, lengths, heads = _three_bars()
    gap = float(spread_gap(flat, targets, lengths, heads, inputs, "onset", "bars"))
    sd, eps = np.std([0.5, 0.8, 0.2]), SPREAD_EPSILON  # the three runs' means
    np.testing.assert_allclose(gap, (np.sqrt(sd ** 2 + eps) - np.sqrt(eps)) ** 2, rtol=1e-4)

    apart = targets[None].copy()  # the first bar's melody louder, its bass softer
    apart[0, 0, 0, 60], apart[0, 0, 5, 30] = 0.8, 0.2
    by_bars = float(spread_gap(apart, targets, lengths, heads, inputs, "onset", "bars"))
    by_steps = float(spread_gap(apart, targets, lengths, heads, inputs, "onset", "steps"))
    assert by_bars < 1e-9 < by_steps


def test_level_error_is_each_bars_mean_error_and_ignores_what_moves_within_it():
    """--level_weight's term: one error per run of BAR_STEPS steps with an onset (the last run
    may be short), between the runs' mean prediction and mean target; a bar voiced apart about
    its own level costs the notes' error, not this one."""
    inputs, targets, flat, lengths, heads = _three_bars()
    gaps = np.array([0.0, 0.3, 0.3])  # the runs' means 0.5, 0.8, 0.2 against 0.5
    np.testing.assert_allclose(
        float(level_error(flat, targets, lengths, heads, inputs, "onset", "squared")),
        np.mean(gaps ** 2), rtol=1e-5)
    np.testing.assert_allclose(
        float(level_error(flat, targets, lengths, heads, inputs, "onset", "absolute")),
        np.mean(gaps), rtol=1e-5)
    # A run past the row's length is not counted: only the first bar, at its level.
    assert float(level_error(flat, targets, np.array([BAR_STEPS], np.int32), heads, inputs,
                             "onset", "absolute")) < 1e-7

    apart = targets[None].copy()  # the first bar's melody louder, its bass softer
    apart[0, 0, 0, 60], apart[0, 0, 5, 30] = 0.8, 0.2
    assert float(level_error(apart, targets, lengths, heads, inputs, "onset")) < 1e-9
    assert float(masked_error(apart, targets, lengths, heads, inputs, "onset")[0]) > 1e-3
    with pytest.raises(ValueError, match="error must be one of"):
        level_error(flat, targets, lengths, heads, inputs, "onset", "cubed")
