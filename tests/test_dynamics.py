"""stylenet_jax.dynamics (the musician's controls and the outlier note) on hand-made velocity
arrays, and the parts of stylenet_jax.performer that use them: describe's line, blend names."""

import numpy as np
import pytest

from stylenet_jax import dynamics, performer, style_choice
from stylenet_jax.dynamics import Controls, ControlError


def ints(*values):
    return np.array(values, np.int64)


def test_strength_blends_with_the_files_own_velocities_rounding_halves_up():
    new, own = ints(100, 20, 64, 127), np.array([50, 60, 64, 10], np.uint8)
    assert dynamics.blend_with_own(new, own, 0.5).tolist() == [75, 40, 64, 69]  # 68.5 -> 69
    assert dynamics.blend_with_own(new, own, 0.25).tolist() == [63, 50, 64, 39]  # 62.5 -> 63
    assert dynamics.blend_with_own(new, own, 0.0).tolist() == [50, 60, 64, 10]
    assert dynamics.blend_with_own(new, own, 1.0).tolist() == [100, 20, 64, 127]
    assert dynamics.blend_with_own(new, own, 0.5).dtype == np.int64


def test_keep_level_shifts_by_one_whole_number_to_the_files_mean_then_clips():
    assert dynamics.keep_level(ints(30, 40, 50), ints(60, 70, 80)).tolist() == [60, 70, 80]
    assert dynamics.keep_level(ints(10, 11), ints(20, 20)).tolist() == [20, 21]  # 9.5 -> 10
    assert dynamics.keep_level(ints(10, 100), ints(100, 120)).tolist() == [65, 127]  # clipped
    assert dynamics.keep_level(ints(90, 100), ints(1, 2)).tolist() == [1, 7]  # -93.5 -> -93
    assert dynamics.keep_level(ints(), ints()).tolist() == []


def test_velocity_range_maps_min_and_max_onto_lo_and_hi_keeping_the_shape():
    assert dynamics.map_range(ints(10, 20, 30, 40), 40, 60).tolist() == [40, 47, 53, 60]
    assert dynamics.map_range(ints(40, 10, 25), 1, 127).tolist() == [127, 1, 64]
    assert dynamics.map_range(ints(1, 2, 3), 10, 11).tolist() == [10, 11, 11]  # 10.5 -> 11
    assert dynamics.map_range(ints(64, 64), 40, 60).tolist() == [50, 50]  # flat: the middle
    assert dynamics.map_range(ints(64), 40, 61).tolist() == [51]
    assert dynamics.map_range(ints(5, 9), 70, 70).tolist() == [70, 70]
    assert dynamics.map_range(ints(), 40, 60).tolist() == []


def test_contrast_multiplies_every_distance_from_the_mean_then_clips():
    assert dynamics.widen(ints(50, 60, 70), 1.5).tolist() == [45, 60, 75]
    assert dynamics.widen(ints(50, 60, 70), 0.5).tolist() == [55, 60, 65]
    assert dynamics.widen(ints(50, 60, 70), 0.0).tolist() == [60, 60, 60]
    assert dynamics.widen(ints(50, 60, 70), 1.0).tolist() == [50, 60, 70]
    assert dynamics.widen(ints(60, 61), 2.0).tolist() == [60, 62]  # 59.5 -> 60, 61.5 -> 62
    assert dynamics.widen(ints(10, 100, 100), 2.0).tolist() == [1, 127, 127]  # clipped
    assert dynamics.widen(ints(), 2.0).tolist() == []
    rng = np.random.default_rng(0)
    played = rng.integers(40, 90, 500)
    wide = dynamics.widen(played, 1.5)
    assert abs(wide.mean() - played.mean()) < 0.5  # the level stays
    assert wide.std() == pytest.approx(1.5 * played.std(), rel=0.01)  # the spread grows
    assert np.corrcoef(wide, played)[0, 1] > 0.999  # the shape is kept


def test_controls_apply_contrast_first():
    new, own = ints(100, 20, 90), ints(50, 60, 40)
    # mean 70; contrast 0.5: 85, 45, 80; strength 0.5 with own: 67.5 -> 68, 52.5 -> 53, 60
    assert Controls(contrast=0.5).apply(new, own).tolist() == [85, 45, 80]
    assert Controls(0.5, contrast=0.5).apply(new, own).tolist() == [68, 53, 60]
    assert not Controls(contrast=1.5).is_default
    assert Controls(contrast=1.25).label() == ", contrast 1.25"
    assert Controls(0.5, contrast=1.5).file_suffix() == "-contrast150-strength50"
    assert Controls.from_flags(1.0, False, None, 1.0) == Controls()


@pytest.mark.parametrize("contrast", [-0.5, 4.5, float("nan"), float("inf"), "x", None])
def test_bad_contrast_is_a_one_line_error(contrast):
    with pytest.raises(ControlError, match=r"^--contrast must be a number in 0\.\.4 ") as e:
        Controls(contrast=contrast)
    assert "\n" not in str(e.value)


def test_controls_apply_strength_then_keep_level_then_range():
    new, own = ints(100, 20, 90), ints(50, 60, 40)
    # strength 0.5: 75, 40, 65 (mean 60); own mean 50 -> shift -10: 65, 30, 55; 30..65 -> 40..60
    assert Controls(0.5).apply(new, own).tolist() == [75, 40, 65]
    assert Controls(0.5, keep_level=True).apply(new, own).tolist() == [65, 30, 55]
    both = Controls(0.5, keep_level=True, velocity_range=(40, 60)).apply(new, own)
    assert both.tolist() == [60, 40, 54] and both.dtype == np.int64  # 54.28... -> 54
    assert Controls(velocity_range=(40, 60)).apply(new, own).tolist() == [60, 40, 58]
    assert Controls(keep_level=True).apply(new, own).tolist() == [80, 1, 70]  # shift -20
    assert Controls().apply(new, own) is new  # the defaults change nothing, not even the dtype
    assert Controls().is_default and not Controls(0.99).is_default


def test_controls_labels_and_from_flags():
    assert Controls().label() == ""
    assert Controls.from_flags(0.5, True, " 40 , 100 ").label() == (
        ", strength 0.5, level kept, range 40-100")
    assert Controls.from_flags(1.0, False, None) == Controls()
    assert Controls.from_flags(1.0, False, "") == Controls()


@pytest.mark.parametrize("strength", [1.5, -0.1, float("nan"), float("inf"), "x", None])
def test_bad_strength_is_a_one_line_error(strength):
    with pytest.raises(ControlError, match=r"^--strength must be a number in 0\.\.1, got "):
        Controls(strength)


@pytest.mark.parametrize("text, words", [
    ("60,40", "LO 60 is above HI 40"), ("0,60", "0 is outside 1..127"),
    ("40,128", "128 is outside 1..127"), ("40", "must be LO,HI"), ("40,60,80", "must be LO,HI"),
    ("a,b", "must be LO,HI"), ("40.5,60", "must be LO,HI"), ("-1,60", "must be LO,HI"),
    (",", "must be LO,HI")])
def test_bad_velocity_range_is_a_one_line_error(text, words):
    with pytest.raises(ControlError, match="^--velocity_range") as raised:
        dynamics.parse_velocity_range(text)
    assert words in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ControlError):
        Controls(velocity_range=(60, 40))


def test_spikes_are_loud_notes_or_far_above_the_files_mean():
    assert dynamics.spike_note(ints(*[30] * 20, 110)) == "1 note at 110 (spikes?)"
    ostinato = list(range(28, 41)) * 4 + [104, 121]  # the pop head's spikes of issue 15
    assert dynamics.spike_note(ints(*ostinato)) == "2 notes at 104-121 (spikes?)"
    assert dynamics.spikes(ints(*ostinato)).tolist() == [False] * 52 + [True, True]
    assert dynamics.spike_note(ints(*range(40, 101))) == ""  # a wide, even spread
    assert dynamics.spike_note(ints(*[60] * 50, 70)) == ""  # 3 deviations up but only 10 steps
    assert dynamics.spike_note(ints(*[60] * 50, 85)) == "1 note at 85 (spikes?)"
    assert dynamics.spike_note(ints(109, 110, 127, 127)) == "3 notes at 110-127 (spikes?)"
    assert dynamics.spike_note(ints()) == ""


def test_describe_names_the_spikes_only_when_there_are_some():
    loud = performer.Result(3, 2, ints(30, 30, 120), 0.5)
    assert performer.describe("out.mid", loud, "style pop") == (
        "out.mid: 2/3 notes changed, velocity min 30 mean 60.0 max 120, "
        "1 note at 120 (spikes?), style pop, 0.50 s")
    quiet = performer.Result(3, 3, ints(30, 40, 50), 0.25)
    assert performer.describe("out.mid", quiet, "style jazz") == (
        "out.mid: 3/3 notes changed, velocity min 30 mean 40.0 max 50, style jazz, 0.25 s")


def test_blend_names_carry_the_weights_in_the_models_style_order():
    styles = ["classical", "jazz", "pop"]
    name = style_choice.blend_name
    assert name(style_choice.parse_blend("jazz", styles), styles) == "jazz"
    assert name(style_choice.parse_blend("jazz=1", styles), styles) == "jazz"
    assert name(style_choice.parse_blend("jazz=0.3,classical=0.7", styles), styles) == (
        "classical70-jazz30")
    assert name(style_choice.parse_blend("classical=0.7,jazz=0.3", styles), styles) == (
        "classical70-jazz30")
    assert name({"pop": 0.125, "classical": 0.875}, styles) == "classical87.5-pop12.5"
    assert name({"jazz": 0.00001, "pop": 0.99999}, styles) == "jazz0.001-pop99.999"
    blends = ["classical=0.7,jazz=0.3", "classical=0.3,jazz=0.7", "classical=0.5,jazz=0.5",
              "classical=0.7,pop=0.3", "jazz=0.7,pop=0.3", "classical=0.3333,jazz=0.6667",
              "classical=0.33333,jazz=0.66667", "classical=1,jazz=0", "classical",
              "classical=0.2,jazz=0.3,pop=0.5"]
    names = [name(style_choice.parse_blend(b, styles), styles) for b in blends]
    assert len(set(names)) == len(names), names
