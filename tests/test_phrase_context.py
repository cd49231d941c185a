"""stylenet_jax.phrase_context on small hand-built notes with known answers."""

import numpy as np
import pytest

from stylenet_jax import phrase_context as pc
from stylenet_jax.phrase_context import PHRASE_CONTEXT_NAMES, phrase_context
from tests.test_note_features import TPB, make_notes, random_notes


def column(rows, name):
    return rows[:, PHRASE_CONTEXT_NAMES.index(name)]


def test_shape_dtype_names_and_row_order():
    notes = random_notes(n=400, seed=3)
    rows = phrase_context(notes, TPB)
    assert rows.shape == (400, len(PHRASE_CONTEXT_NAMES)) and rows.dtype == np.float32
    assert np.isfinite(rows).all() and len(set(PHRASE_CONTEXT_NAMES)) == len(rows[0])
    assert phrase_context(make_notes([]), TPB).shape == (0, len(PHRASE_CONTEXT_NAMES))
    # Rows follow the notes as given: shuffling the notes shuffles the rows the same way.
    order = np.random.default_rng(0).permutation(400)
    shuffled = make_notes(np.stack([notes.start, notes.end, notes.pitch], 1)[order])
    np.testing.assert_array_equal(phrase_context(shuffled, TPB), rows[order])


def test_window_extreme_matches_brute_force():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 100, 300).astype(np.float64)
    low = rng.integers(-20, 299, 500)
    high = np.minimum(low + rng.integers(1, 80, 500), 320)
    high = np.maximum(high, np.clip(low, 0, 299) + 1)
    for take, reduce in ((np.maximum, np.max), (np.minimum, np.min)):
        expected = [reduce(values[max(a, 0):min(b, 300)]) for a, b in zip(low, high)]
        np.testing.assert_array_equal(
            pc._window_extreme(pc._sparse_table(values, take), low, high, take), expected)


def test_a_loud_middle_section_reads_denser_higher_and_wider():
    # 256 steps: one note every 4 steps at pitch 60, except steps 96..159 (a 64-step section)
    # with a three-note chord (60, 72, 84) at every 2 steps.
    rows = []
    for step in range(0, 256, 4):
        if not 96 <= step < 160:
            rows.append((step, step + 1, 60))
    for step in range(96, 160, 2):
        rows += [(step, step + 1, pitch) for pitch in (60, 72, 84)]
    notes = make_notes(rows)
    context = phrase_context(notes, TPB)
    onset = notes.start
    mid = np.flatnonzero((onset == 128) & (notes.pitch == 72))[0]
    edge = np.flatnonzero(onset == 0)[0]
    piece_density = len(rows) / 253  # onsets 0..252 -> 253 steps
    # A 32-step window centred on step 128 holds 16 chords of 3 notes.
    assert column(context, "rel_density_32")[mid] == pytest.approx(48 / 32 / piece_density,
                                                                   rel=1e-5)
    assert column(context, "range_32")[mid] == 24 and column(context, "range_32")[edge] == 0
    pitches = notes.pitch.astype(float)
    assert column(context, "rel_pitch_32")[mid] == pytest.approx(72 - pitches.mean(), abs=1e-4)
    assert column(context, "rel_top_32")[mid] == pytest.approx(84 - np.percentile(pitches, 90))
    # Entering the section (step 92): the texture thickens after it, so density rises.
    entering = np.flatnonzero(onset == 92)[0]
    leaving = np.flatnonzero(onset == 160)[0]
    assert column(context, "density_change_32")[entering] > 0
    assert column(context, "density_change_32")[leaving] < 0
    assert column(context, "pitch_change_32")[entering] == pytest.approx(12.0)  # 60 -> 72
    # A chord of 3 against the piece's mean notes per onset step.
    onsets = len(np.unique(onset))
    assert column(context, "rel_chord")[mid] == pytest.approx(3 / (len(rows) / onsets))
    assert column(context, "rel_chord")[edge] == pytest.approx(1 / (len(rows) / onsets))


def test_tempo_columns_follow_the_seconds_and_default_to_one():
    notes = make_notes([(step, step + 1, 60) for step in range(0, 1024, 4)])
    assert (column(phrase_context(notes, TPB), "rel_tempo_64") == 1).all()
    # The first half at 0.1 s per step, the second at 0.3 s per step (a slowing down).
    step = notes.start.astype(float)
    seconds = np.where(step < 512, step * 0.1, 51.2 + (step - 512) * 0.3)
    context = phrase_context(notes, TPB, seconds)
    piece = seconds[-1] / step[-1]
    early, late = np.flatnonzero(step == 100)[0], np.flatnonzero(step == 900)[0]
    for name in ("rel_tempo_64", "rel_tempo_256"):
        assert column(context, name)[early] == pytest.approx(0.1 / piece, rel=1e-5)
        assert column(context, name)[late] == pytest.approx(0.3 / piece, rel=1e-5)
