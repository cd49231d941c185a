"""stylenet_jax.melody_line on small hand-built notes with known answers."""

import numpy as np
import pytest

from stylenet_jax.melody_line import MELODY_LINE_NAMES, _signed_runs, melody_line
from tests.test_note_features import TPB, make_notes, random_notes


def column(rows, name):
    return rows[:, MELODY_LINE_NAMES.index(name)]


def test_shape_dtype_names_and_row_order():
    notes = random_notes(n=400, seed=5)
    rows = melody_line(notes, TPB)
    assert rows.shape == (400, len(MELODY_LINE_NAMES)) and rows.dtype == np.float32
    assert np.isfinite(rows).all() and len(set(MELODY_LINE_NAMES)) == rows.shape[1]
    assert melody_line(make_notes([]), TPB).shape == (0, len(MELODY_LINE_NAMES))
    # Rows follow the notes as given: shuffling the notes shuffles the rows the same way.
    order = np.random.default_rng(0).permutation(400)
    shuffled = make_notes(np.stack([notes.start, notes.end, notes.pitch], 1)[order])
    np.testing.assert_array_equal(melody_line(shuffled, TPB), rows[order])


def test_signed_runs_count_steps_in_a_row_that_go_the_same_way():
    np.testing.assert_array_equal(_signed_runs(np.array([0, 2, 1, -1, 0, 3, 3, 3, -2])),
                                  [0, 1, 2, -1, 0, 1, 2, 3, -1])


def test_a_rising_then_falling_tune_over_a_held_bass():
    # One melody note every 4 steps: up 60..68 in five steps of 2, then down to 60; under
    # each melody note a bass note at 36 (a chord of two), so the skyline is the tune.
    tune = [60, 62, 64, 66, 68, 66, 64, 62, 60]
    rows = [(4 * i, 4 * i + 4, p) for i, p in enumerate(tune)]
    rows += [(4 * i, 4 * i + 4, 36) for i in range(len(tune))]
    notes = make_notes(rows)
    table = melody_line(notes, TPB)
    melody, bass = slice(0, 9), slice(9, 18)
    # Both notes of a group share the group's values.
    np.testing.assert_array_equal(table[melody], table[bass])
    np.testing.assert_array_equal(column(table, "melody_is_peak")[melody],
                                  [0, 0, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(column(table, "melody_run_before")[melody],
                                  [0, 1, 2, 3, 4, -1, -2, -3, -4])
    np.testing.assert_array_equal(column(table, "melody_run_after")[melody],
                                  [4, 3, 2, 1, -4, -3, -2, -1, 0])
    np.testing.assert_array_equal(column(table, "melody_rise_before_4")[melody],
                                  [0, 2, 4, 6, 8, 4, 0, -4, -8])
    np.testing.assert_array_equal(column(table, "melody_rise_after_4")[melody],
                                  [8, 4, 0, -4, -8, -6, -4, -2, 0])
    # The climax (group 4) is 4 groups ahead of the first and 4 behind the last.
    np.testing.assert_array_equal(column(table, "melody_peak_offset_16")[melody],
                                  [4, 3, 2, 1, 0, -1, -2, -3, -4])
    np.testing.assert_array_equal(column(table, "melody_peak_offset_4")[melody],
                                  [4, 3, 2, 1, 0, -1, -2, -3, -4])
    np.testing.assert_allclose(column(table, "melody_place_16")[melody],
                               np.array(tune[:9]) / 8 - 7.5)
    np.testing.assert_allclose(column(table, "melody_minus_local_16")[melody],
                               np.array(tune) - np.mean(tune), atol=1e-5)
    # Near the edges the span holds fewer groups: the first group's 4-span is groups 0..4.
    assert column(table, "melody_minus_local_4")[0] == pytest.approx(60 - 64)
    np.testing.assert_array_equal(column(table, "bass_minus_local_16"), 0)
    # Every melodic step is 2 semitones (the first group's step into it counts as 0).
    assert column(table, "melody_motion_16")[0] == pytest.approx(16 / 9)
    assert column(table, "melody_motion_4")[5] == pytest.approx(2)  # groups 1..8


def test_a_repeated_note_stops_a_run_and_flat_spans_sit_in_the_middle():
    notes = make_notes([(4 * i, 4 * i + 4, 60) for i in range(6)])
    table = melody_line(notes, TPB)
    for name in ("melody_run_before", "melody_run_after", "melody_is_peak",
                 "melody_minus_local_4", "melody_motion_16", "melody_rise_after_4"):
        np.testing.assert_array_equal(column(table, name), 0, err_msg=name)
    np.testing.assert_array_equal(column(table, "melody_place_4"), 0.5)
    # Tied highest notes: the first of them is the peak.
    np.testing.assert_array_equal(column(table, "melody_peak_offset_4"), [0, -1, -2, -3, -4, -4])


def test_out_of_range_pitch_is_refused():
    with pytest.raises(ValueError, match="21..108"):
        melody_line(make_notes([(0, 4, 110)]), TPB)
