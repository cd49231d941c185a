"""stylenet_jax.error_breakdown: level against shape, and errors by musical role."""

import numpy as np
import pytest

from stylenet_jax import error_breakdown, midi
from stylenet_jax.performances import Performed


def performed(piece: str, velocities, chords: int = 6, style: str = "jazz") -> Performed:
    """``chords`` three-note chords (keys 48, 52, 55), one a beat, with the given velocities
    (lowest note first in each chord)."""
    pitch = np.tile([48, 52, 55], chords)
    start = np.repeat(np.arange(chords) * 480, 3)
    n = len(pitch)
    notes = midi.Notes(pitch=pitch.astype(np.int16), start=start.astype(np.int64),
                       end=(start + 240).astype(np.int64),
                       velocity=np.asarray(velocities, np.uint8),
                       channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                       index=np.arange(n, dtype=np.int32))
    return Performed(piece, style, piece, f"{piece}.mid", notes, 480, start / 960.0)


def test_level_and_shape_are_told_apart_and_roles_carry_the_shape():
    shape = np.tile([-10, 0, 10], 6)  # bass soft, top loud
    pianist = [performed("a", 60 + shape), performed("b", 80 + shape),
               performed("c", 40 + shape)]
    same_shape_wrong_level = [60 + shape + 5, 80 + shape - 5, 40 + shape + 5]
    flat_right_level = [np.full(18, 60), np.full(18, 80), np.full(18, 40)]
    result = error_breakdown.breakdown(pianist, {"shape": same_shape_wrong_level,
                                                 "level": flat_right_level})
    shape_only, level_only = result["shape"]["jazz"], result["level"]["jazz"]
    assert shape_only["centred_mae"] == 0.0 and shape_only["level_mae"] == 5.0
    assert np.isclose(shape_only["level_bias"], 5 / 3)  # +5, -5, +5: signed, unlike the MAE
    assert level_only["level_bias"] == 0.0
    assert level_only["level_mae"] == 0.0 and level_only["level_r"] == 1.0
    assert np.isclose(level_only["centred_mae"], 20 / 3)
    top, bottom, inner = (level_only["roles"][r] for r in ("top voice", "bottom voice",
                                                              "inner voice"))
    assert top["share"] == bottom["share"] == inner["share"] == 1 / 3
    assert top["pianist_deviation"] == 10.0 and bottom["pianist_deviation"] == -10.0
    assert top["deviation"] == 0.0 and top["centred_mae"] == 10.0
    assert inner["centred_mae"] == 0.0
    assert shape_only["roles"]["top voice"]["deviation"] == 10.0
    chords = level_only["roles"]["chord of 3+"]
    assert chords["share"] == 1.0 and level_only["roles"]["single note"]["share"] == 0.0
    assert np.isnan(level_only["roles"]["single note"]["centred_mae"])  # no such notes


def test_styles_are_kept_apart_and_a_flat_level_has_no_r():
    shape = np.tile([-5, 0, 5], 6)
    pianist = [performed("a", 60 + shape), performed("b", 70 + shape, style="pop")]
    result = error_breakdown.breakdown(pianist, {"x": [np.full(18, 60), np.full(18, 75)]})
    assert sorted(result["x"]) == ["jazz", "pop"]
    assert result["x"]["pop"]["level_mae"] == 5.0
    assert np.isnan(result["x"]["jazz"]["level_r"])  # one performance: no correlation


def test_roles_follow_the_file_order_of_the_notes():
    p = performed("a", np.tile([30, 60, 90], 6))
    order = np.random.default_rng(0).permutation(18)
    shuffled = p._replace(notes=p.notes.select(order), seconds=p.seconds[order])
    roles = error_breakdown.note_roles(shuffled)
    np.testing.assert_array_equal(roles["top voice"], shuffled.notes.pitch == 55)
    np.testing.assert_array_equal(roles["bottom voice"], shuffled.notes.pitch == 48)



def test_phrases_tell_the_runs_levels_from_the_notes_within_them():
    """48 notes make three runs of PHRASE_NOTES (16) notes. The pianist plays each run at its
    own level (times 1, -1 or 2 in the three performances) with a zero-mean texture within
    it. A system with the run levels alone has phrase r 1 and the texture as its in-phrase
    error; one with the texture alone has no phrase r and no in-phrase error."""
    assert error_breakdown.PHRASE_NOTES == 16
    levels = np.repeat([-10, 0, 10], 16)
    texture = np.tile([-4, 4], 24)
    scales = (1, -1, 2)
    pianist = [performed(name, 60 + k * levels + texture, chords=16)
               for name, k in zip("abc", scales)]
    result = error_breakdown.breakdown(pianist, {
        "levels": [60 + k * levels for k in scales],
        "reversed": [60 - k * levels for k in scales],
        "texture": [60 + texture] * 3})
    assert result["levels"]["jazz"]["phrase_r"] == pytest.approx(1.0)
    assert result["levels"]["jazz"]["in_phrase_mae"] == pytest.approx(4.0)
    assert result["reversed"]["jazz"]["phrase_r"] == pytest.approx(-1.0)
    assert np.isnan(result["texture"]["jazz"]["phrase_r"])  # every run at the same level
    assert result["texture"]["jazz"]["in_phrase_mae"] == 0.0


def test_runs_follow_the_onsets_not_the_file_order():
    p = performed("a", np.full(48, 60), chords=16)
    order = np.random.default_rng(0).permutation(48)
    shuffled = p._replace(notes=p.notes.select(order), seconds=p.seconds[order])
    np.testing.assert_array_equal(error_breakdown.phrase_runs(p), np.arange(48) // 16)
    np.testing.assert_array_equal(error_breakdown.phrase_runs(shuffled),
                                  (np.arange(48) // 16)[order])
