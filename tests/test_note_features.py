"""stylenet_jax.note_features on small hand-built notes with known answers."""

import numpy as np
import pytest

from stylenet_jax import midi
from stylenet_jax.note_features import FEATURE_NAMES, note_features

TPB = 4  # one tick per sixteenth step: starts and ends below are in steps


def make_notes(rows, ticks_per_beat=TPB):
    """midi.Notes from (start, end, pitch) rows (ticks), velocity 64, one track, file order."""
    table = np.array(rows, np.int64).reshape(-1, 3)
    n = len(table)
    return midi.Notes(pitch=table[:, 2].astype(np.int16), start=table[:, 0], end=table[:, 1],
                      velocity=np.full(n, 64, np.uint8), channel=np.zeros(n, np.uint8),
                      track=np.zeros(n, np.int32), index=np.arange(n, dtype=np.int32))


def column(features, name):
    return features[:, FEATURE_NAMES.index(name)]


def random_notes(n=300, seed=0):
    rng = np.random.default_rng(seed)
    start = np.sort(rng.integers(0, 400, n))
    return make_notes(np.stack([start, start + rng.integers(1, 9, n), rng.integers(21, 109, n)], 1))


def test_shape_dtype_finite_and_names():
    features = note_features(random_notes(), TPB)
    assert features.shape == (300, len(FEATURE_NAMES)) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) and 60 <= len(FEATURE_NAMES) <= 100
    assert note_features(make_notes([]), TPB).shape == (0, len(FEATURE_NAMES))


def test_chord_rank_size_and_flags():
    # a 4-note chord at step 0 (given in scrambled pitch order), a single note, a 2-note chord
    notes = make_notes([(0, 4, 64), (0, 4, 48), (0, 4, 67), (0, 4, 60), (4, 8, 72),
                        (8, 12, 55), (8, 12, 50)])
    f = note_features(notes, TPB)
    np.testing.assert_array_equal(column(f, "chord_size"), [4, 4, 4, 4, 1, 2, 2])
    np.testing.assert_array_equal(column(f, "chord_rank_from_bottom"), [2, 0, 3, 1, 0, 1, 0])
    np.testing.assert_array_equal(column(f, "chord_rank_from_top"), [1, 3, 0, 2, 0, 0, 1])
    np.testing.assert_array_equal(column(f, "is_chord_highest"), [0, 0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(column(f, "is_chord_lowest"), [0, 1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(column(f, "chord_span"), [19, 19, 19, 19, 0, 5, 5])
    np.testing.assert_array_equal(column(f, "above_chord_lowest"), [16, 0, 19, 12, 0, 5, 0])
    # neighbours: previous / next onset's top note and the gaps in steps (-1: none)
    np.testing.assert_array_equal(column(f, "steps_since_prev_onset"), [-1] * 4 + [4, 4, 4])
    np.testing.assert_array_equal(column(f, "steps_to_next_onset"), [4] * 4 + [4, -1, -1])
    np.testing.assert_array_equal(column(f, "interval_from_prev_top"),
                                  [0, 0, 0, 0, 72 - 67, 55 - 72, 50 - 72])
    np.testing.assert_array_equal(column(f, "interval_to_next_top"),
                                  [72 - 64, 72 - 48, 72 - 67, 72 - 60, 55 - 72, 0, 0])


def test_metrical_position_on_the_sixteenth_grid():
    steps = np.array([0, 1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 30, 33])
    f = note_features(make_notes([(s, s + 1, 60) for s in steps]), TPB)
    for modulus in (4, 8, 12, 16):
        np.testing.assert_array_equal(column(f, f"onset_mod_{modulus}"), steps % modulus)
    # 480 ticks per beat: a step is 120 ticks; 59 rounds down to step 0, 60 and 179 to step 1
    f = note_features(make_notes([(59, 200, 60), (60, 240, 62), (179, 300, 64), (1000, 1080, 65)],
                                 ticks_per_beat=480), 480)
    np.testing.assert_array_equal(column(f, "onset_mod_4"), [0, 1, 1, 0])  # 1000/120 -> step 8
    np.testing.assert_array_equal(column(f, "duration_steps"), [2, 1, 2, 1])


def test_density_counts_onsets_per_step():
    # one note on every step 0..99, plus a second note on step 50
    rows = [(s, s + 1, 60) for s in range(100)] + [(50, 51, 72)]
    rows.sort()
    f = note_features(make_notes(rows), TPB)
    onset = np.array([r[0] for r in rows])
    at = {name: column(f, name) for name in FEATURE_NAMES if name.startswith("density")}
    single = np.flatnonzero(onset == 30)[0]
    for span in (4, 16):
        assert at[f"density_before_{span}"][single] == 1.0
        assert at[f"density_after_{span}"][single] == 1.0
    assert at["density_centred_4"][single] == 1.0
    assert at["density_before_4"][np.flatnonzero(onset == 52)[0]] == 5 / 4  # 48, 49, 50 x2, 51
    assert at["density_after_4"][np.flatnonzero(onset == 47)[0]] == 5 / 4
    assert at["density_before_4"][0] == 0.0 and at["density_before_4"][2] == 2 / 4
    assert at["density_after_256"][0] == 100 / 256  # steps 1..99 and the extra note
    assert at["density_centred_64"][np.flatnonzero(onset == 50)[0]] == 65 / 64


def test_rolling_means_and_stds_over_notes():
    pitch = 25 + np.arange(80)
    f = note_features(make_notes([(i, i + 1 + i % 3, p) for i, p in enumerate(pitch)]), TPB)
    i = np.arange(80)
    expected_prev = np.array([pitch[max(k - 14, 0):k + 1].mean() for k in i])
    expected_next = np.array([pitch[k:k + 15].mean() for k in i])
    np.testing.assert_allclose(column(f, "prev15_mean_pitch"), expected_prev, rtol=1e-6)
    np.testing.assert_allclose(column(f, "next15_mean_pitch"), expected_next, rtol=1e-6)
    assert column(f, "prev15_mean_pitch")[3] == pytest.approx(26.5)
    std15 = np.sqrt((15 ** 2 - 1) / 12)  # of 15 consecutive integers
    np.testing.assert_allclose(column(f, "prev15_std_pitch")[14:], std15, rtol=1e-5)
    assert column(f, "prev15_std_pitch")[0] == 0.0
    duration = 1 + i % 3
    np.testing.assert_allclose(column(f, "next50_mean_duration"),
                               [duration[k:k + 50].mean() for k in i], rtol=1e-6)
    np.testing.assert_allclose(column(f, "prev200_std_duration"),
                               [duration[:k + 1].std() for k in i], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(column(f, "prev50_mean_chord_size"), 1.0)
    np.testing.assert_allclose(column(f, "pitch_minus_local_mean")[50], 0.0, atol=1e-5)
    assert column(f, "local_pitch_min")[50] == 60 and column(f, "local_pitch_max")[50] == 90
    np.testing.assert_allclose(column(f, "piece_fraction"), i / 79, rtol=1e-6)
    np.testing.assert_array_equal(column(f, "notes_to_end"), 79 - i)


def test_voices_count_held_notes_and_pick_the_top_voice():
    # bass 36 held over steps 0..15; melody 72 on steps 0, 4, 8; inner note 40 on step 4
    notes = make_notes([(0, 16, 36), (0, 2, 72), (4, 6, 40), (4, 6, 72), (8, 10, 72)])
    f = note_features(notes, TPB)
    np.testing.assert_array_equal(column(f, "sounding_keys"), [2, 2, 3, 3, 2])
    np.testing.assert_array_equal(column(f, "sounding_above"), [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(column(f, "sounding_below"), [0, 1, 1, 2, 1])
    np.testing.assert_array_equal(column(f, "is_top_voice"), [0, 1, 0, 1, 1])
    np.testing.assert_array_equal(column(f, "is_bottom_voice"), [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(column(f, "steps_since_same_pitch"), [-1, -1, -1, 4, 4])
    np.testing.assert_allclose(column(f, "legato_ratio"), [16 / 4, 2 / 4, 2 / 4, 2 / 4, -1])


def test_seconds_give_inter_onset_times_and_local_tempo():
    notes = make_notes([(s, s + 1, 60) for s in range(0, 64, 2)])
    default = note_features(notes, TPB)  # 120 bpm: a step is 0.125 s
    np.testing.assert_allclose(column(default, "seconds_since_prev_onset")[1:], 0.25, rtol=1e-6)
    np.testing.assert_allclose(column(default, "local_seconds_per_beat"), 0.5, rtol=1e-6)
    seconds = np.arange(32) * 0.5  # twice as slow: 1 s per beat
    slow = note_features(notes, TPB, seconds)
    np.testing.assert_allclose(column(slow, "seconds_to_next_onset")[:-1], 0.5, rtol=1e-6)
    assert column(slow, "seconds_to_next_onset")[-1] == -1
    np.testing.assert_allclose(column(slow, "piece_seconds_per_beat"), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="seconds"):
        note_features(notes, TPB, seconds[:5])
    with pytest.raises(ValueError, match="21..108"):
        note_features(make_notes([(0, 1, 15)]), TPB)


def test_rows_follow_the_given_note_order():
    notes = random_notes(200, seed=3)
    seconds = notes.start * 0.11 + np.random.default_rng(1).normal(0, 0.01, 200)
    # distinct (onset, pitch) pairs so that the internal order does not depend on the input's
    key = notes.start * 1000 + notes.pitch
    keep = np.zeros(200, bool)
    keep[np.unique(key, return_index=True)[1]] = True
    notes, seconds = notes.select(keep), seconds[keep]
    features = note_features(notes, TPB, seconds)
    shuffle = np.random.default_rng(2).permutation(len(notes))
    reordered = notes.select(shuffle)
    shuffled = note_features(reordered, TPB, seconds[shuffle])
    np.testing.assert_array_equal(shuffled, features[shuffle])
    assert not np.array_equal(features[shuffle], features)  # the shuffle did move rows
    np.testing.assert_array_equal(column(features, "pitch"), notes.pitch)


def test_a_long_silence_costs_nothing():
    """Held keys at each onset are counted without a (steps, 88) grid: two chords 2^40
    sixteenths apart take no memory to speak of."""
    far = 2 ** 40
    notes = make_notes([(0, 8, 60), (0, far + 4, 64), (far, far + 4, 67)])
    rows = note_features(notes, 4)
    voices = rows[:, FEATURE_NAMES.index("sounding_keys")]
    assert voices.tolist() == [2, 2, 2] and np.isfinite(rows).all()
