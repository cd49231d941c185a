"""Pitch-transposition augmentation (--transpose): encoding.transpose / key_span, and
batching.transposed on training batches."""

import numpy as np
import pytest

from stylenet_jax import batching, encoding
from stylenet_jax.config import DataConfig


def grid(rows):
    """inputs (N, 8, 176) and targets (N, 8, 88): row i holds the (key, velocity) notes of
    rows[i], each an onset at step 0 held to step 3."""
    inputs = np.zeros((len(rows), 8, 176), np.uint8)
    targets = np.zeros((len(rows), 8, 88), np.float32)
    for i, notes in enumerate(rows):
        for key, velocity in notes:
            inputs[i, 0, 2 * key] = 1  # onset channel
            inputs[i, :4, 2 * key + 1] = 1  # held channel
            targets[i, :4, key] = velocity / 127
    return inputs, targets


def test_transpose_moves_both_channels_and_the_targets_of_each_row_by_its_own_shift():
    inputs, targets = grid([[(40, 100), (44, 50)], [(40, 100)], []])
    moved_in, moved_out = encoding.transpose(inputs, targets, np.array([3, -2, 5]))
    expected_in, expected_out = grid([[(43, 100), (47, 50)], [(38, 100)], []])
    np.testing.assert_array_equal(moved_in, expected_in)
    np.testing.assert_array_equal(moved_out, expected_out)
    assert moved_in.dtype == np.uint8 and moved_out.dtype == np.float32
    back_in, back_out = encoding.transpose(moved_in, moved_out, np.array([-3, 2, -5]))
    np.testing.assert_array_equal(back_in, inputs)  # a safe shift loses nothing
    np.testing.assert_array_equal(back_out, targets)
    np.testing.assert_array_equal(encoding.transpose(inputs, targets, np.zeros(3, int))[0],
                                  inputs)


def test_key_span_and_notes_pushed_off_the_keyboard():
    inputs, targets = grid([[(2, 60), (85, 70)], []])
    low, high = encoding.key_span(inputs)
    assert low.tolist() == [2, 88] and high.tolist() == [85, -1]
    lost_in, lost_out = encoding.transpose(inputs, targets, np.array([4, 0]))
    assert encoding.key_span(lost_in)[1][0] == 6  # key 85 + 4 is off the top: gone
    assert lost_out[0].max() == pytest.approx(60 / 127)


def test_transposed_batches_keep_every_note_shapes_masks_and_styles():
    rows = [[(k, 64)] for k in range(0, 88, 4)] + [[(0, 90), (87, 30)], []]
    inputs, targets = grid(rows)
    n = len(rows)
    batch = batching.Batch(inputs, targets, np.full(n, 8, np.int32), np.arange(n) % 2,
                           np.ones(n, bool))
    seen = []
    for seed in range(4):
        [moved] = batching.transposed(iter([batch]), 3, np.random.default_rng(seed))
        assert moved.inputs.shape == inputs.shape and moved.targets.shape == targets.shape
        np.testing.assert_array_equal(moved.lengths, batch.lengths)
        np.testing.assert_array_equal(moved.styles, batch.styles)
        # no note lost: per row, the same number of cells and the same velocities
        np.testing.assert_array_equal(moved.inputs.sum(axis=(1, 2)), inputs.sum(axis=(1, 2)))
        np.testing.assert_allclose(np.sort(moved.targets.reshape(n, -1), axis=1),
                                   np.sort(targets.reshape(n, -1), axis=1))
        low, _ = encoding.key_span(inputs)
        new_low, _ = encoding.key_span(moved.inputs)
        shift = np.where(low < 88, new_low - low, 0)
        assert np.abs(shift).max() <= 3
        assert shift[-2] == 0 and shift[-1] == 0  # a full-range row and an empty row stay
        seen.append(shift)
    assert len({tuple(s) for s in seen}) == 4  # the seed decides, rows differ
    [again] = batching.transposed(iter([batch]), 3, np.random.default_rng(0))
    [first] = batching.transposed(iter([batch]), 3, np.random.default_rng(0))
    np.testing.assert_array_equal(again.inputs, first.inputs)


def test_transpose_setting_is_checked():
    assert DataConfig().transpose == 0  # off: the paper
    with pytest.raises(ValueError, match="0..12"):
        DataConfig(transpose=13)
    with pytest.raises(ValueError, match="carry_state"):
        DataConfig(transpose=2, carry_state=True)
