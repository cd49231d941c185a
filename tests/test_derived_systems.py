"""stylenet_jax.derived_systems: systems made of other systems' performances (mixes, contrast,
level and shape, a system per style), each checked note by note against its parts, and their
specs' one-line errors."""

import dataclasses

import numpy as np
import pytest

from performance_factory import RISING_CLASSICAL, performance_folder
from stylenet_jax import derived_systems, dynamics, evaluation, performances


@pytest.fixture
def found(tmp_path) -> list:
    """The performance folder's three performances (two classical, one jazz), as read."""
    performance_folder(tmp_path / "human")
    return performances.from_folder(str(tmp_path / "human"))


def test_a_mix_is_the_rounded_weighted_mean_of_its_parts_on_every_note(found):
    stats = RISING_CLASSICAL
    parts = [evaluation.ConstantSystem(stats), evaluation.PerPitchSystem(stats)]
    mix = derived_systems.parse_mix("both=constant:3,per_pitch:1", [p.name for p in parts])
    assert mix.parts == (("constant", 0.75), ("per_pitch", 0.25))
    calls = []

    class Counting(evaluation.PerPitchSystem):
        def perform(self, p):
            calls.append(p.id)
            return super().perform(p)

    result = evaluation.evaluate(found, [parts[0], Counting(stats), mix])
    assert len(calls) == len(found)  # the mix reused the part's performance
    for k, p in enumerate(found):
        expected = np.clip(np.rint(0.75 * result.velocities["constant"][k]
                                   + 0.25 * result.velocities["per_pitch"][k]), 1, 127)
        np.testing.assert_array_equal(result.velocities["both"][k], expected)
    assert len(set(result.velocities["both"][0])) > 1  # classical: not the constant alone


@pytest.mark.parametrize("spec, words", [
    ("both", "expected NAME=SYSTEM:WEIGHT"),
    ("constant=constant:1,random:1", "already the name"),
    ("m=constant:1", "two or more"),
    ("m=constant:1,tree:1", "'tree:1' is not SYSTEM:WEIGHT"),
    ("m=constant:1,random:0", "'random:0' is not"),
    ("m=constant:1,random:x", "'random:x' is not"),
    ("m=constant:1,constant:2", "named twice"),
])
def test_a_bad_mix_is_one_line(spec, words):
    with pytest.raises(ValueError, match=words):
        derived_systems.parse_mix(spec, ["constant", "random"])


def test_a_contrast_system_widens_its_parts_performance_of_each_piece(found):
    stats = RISING_CLASSICAL
    part = evaluation.PerPitchSystem(stats)
    wide = derived_systems.parse_contrast("wide=per_pitch:1.5", [part.name])
    assert wide == derived_systems.ContrastSystem("per_pitch", 1.5, "wide")
    result = evaluation.evaluate(found, [part, wide])
    for played, widened in zip(result.velocities["per_pitch"], result.velocities["wide"]):
        np.testing.assert_array_equal(widened, dynamics.widen(played, 1.5))
    first = result.velocities["per_pitch"][0]
    assert result.velocities["wide"][0].std() > 1.4 * first.std() > 0


@pytest.mark.parametrize("spec, words", [
    ("wide", "expected NAME=SYSTEM:C"), ("wide=tree:1.5", "expected NAME=SYSTEM:C"),
    ("wide=per_pitch", "expected NAME=SYSTEM:C"), ("per_pitch=per_pitch:2", "already the name"),
    ("wide=per_pitch:9", "--contrast must be a number in 0..4"),
    ("wide=per_pitch:x", "--contrast must be a number in 0..4")])
def test_a_bad_contrast_spec_is_one_line(spec, words):
    with pytest.raises(ValueError, match=words) as raised:
        derived_systems.parse_contrast(spec, ["per_pitch"])
    assert "\n" not in str(raised.value)


def test_a_level_shape_system_has_one_part_level_and_the_other_part_shape(found):
    stats = RISING_CLASSICAL
    parts = [evaluation.ConstantSystem(stats), evaluation.PerPitchSystem(stats)]
    moved = derived_systems.parse_level_shape("moved=constant:per_pitch",
                                              [p.name for p in parts])
    assert moved == derived_systems.LevelShapeSystem("constant", "per_pitch", "moved")
    result = evaluation.evaluate(found, [*parts, moved])
    for level, shape, both in zip(result.velocities["constant"], result.velocities["per_pitch"],
                                  result.velocities["moved"]):
        expected = np.clip(np.rint(shape - shape.mean() + level.mean()), 1, 127)
        np.testing.assert_array_equal(both, expected)
    classical = result.velocities["moved"][0]  # per-pitch shape, the constant's level
    assert len(set(classical)) > 1 and abs(classical.mean() - 70.0) < 0.5


def test_a_level_shape_system_over_runs_takes_each_runs_level_from_one_part(found):
    from stylenet_jax import error_breakdown

    @dataclasses.dataclass
    class Narrow:  # velocities 55..75 at random: a shape that never needs clipping here
        name: str = "narrow"

        def perform(self, performed):
            rng = np.random.default_rng(len(performed.notes))
            return evaluation.Performance(rng.integers(55, 76, len(performed.notes)))

    stats = evaluation.NoteStatistics({"classical": 70.0, "jazz": 40.0},
                                      {"classical": list(range(1, 89)),
                                       "jazz": list(range(1, 89))})
    parts = [evaluation.PerPitchSystem(stats), Narrow()]
    runs_of_4 = derived_systems.parse_level_shape("moved=per_pitch:narrow:4",
                                                  ["per_pitch", "narrow"])
    assert runs_of_4 == derived_systems.LevelShapeSystem("per_pitch", "narrow", "moved", 4)
    result = evaluation.evaluate(found, [*parts, runs_of_4])
    for performed, level, shape, both in zip(found, result.velocities["per_pitch"],
                                             result.velocities["narrow"],
                                             result.velocities["moved"]):
        runs = error_breakdown.phrase_runs(performed, 4)
        assert runs.max() >= 3
        means = {name: error_breakdown.run_means(v.astype(float), runs)
                 for name, v in (("level", level), ("shape", shape), ("both", both))}
        # Each run of 4 notes sits at the level part's mean for that run (to rounding), and
        # within it keeps the shape part's steps from note to note.
        np.testing.assert_allclose(means["both"], means["level"], atol=0.5)
        np.testing.assert_allclose(both - means["both"][runs], shape - means["shape"][runs],
                                   atol=1.0)
        assert not np.allclose(means["both"], means["shape"], atol=0.5)


def test_a_level_shape_system_may_hold_a_humanized_system_at_another_systems_levels():
    from experiments import evaluate as evaluate_app

    systems, described = evaluate_app.build_systems(
        [f"tree={evaluate_app.DEFAULT_FEATURES}"], [], humanize_specs=["tree_h=tree:1"],
        level_shape_specs=["held=tree:tree_h:16"])
    assert [s.name for s in systems] == ["tree", "tree_h", "held"]
    assert systems[2] == derived_systems.LevelShapeSystem("tree", "tree_h", "held", 16)
    assert "each run of 16 consecutive notes" in described["held"]


@pytest.mark.parametrize("spec, words", [
    ("moved", "expected NAME=LEVEL_SYSTEM:SHAPE_SYSTEM"),
    ("moved=constant", "expected NAME=LEVEL_SYSTEM:SHAPE_SYSTEM"),
    ("moved=constant:tree", "expected NAME=LEVEL_SYSTEM:SHAPE_SYSTEM"),
    ("constant=constant:per_pitch", "already the name"),
    ("moved=constant:constant", "one system"),
    ("moved=constant:per_pitch:0", "K a whole number of notes >= 1"),
    ("moved=constant:per_pitch:2.5", "K a whole number"),
    ("moved=constant:per_pitch:4:4", "expected NAME=LEVEL_SYSTEM:SHAPE_SYSTEM")])
def test_a_bad_level_shape_spec_is_one_line(spec, words):
    with pytest.raises(ValueError, match=words) as raised:
        derived_systems.parse_level_shape(spec, ["constant", "per_pitch"])
    assert "\n" not in str(raised.value)


def test_a_per_style_system_plays_each_style_as_the_system_named_for_it(found):
    stats = RISING_CLASSICAL
    parts = [evaluation.ConstantSystem(stats), evaluation.PerPitchSystem(stats)]
    chosen = derived_systems.parse_per_style("chosen=classical:constant, jazz:per_pitch",
                                             ["constant", "per_pitch"])
    assert chosen == derived_systems.PerStyleSystem(
        (("classical", "constant"), ("jazz", "per_pitch")), "chosen")
    result = evaluation.evaluate(found, [*parts, chosen])
    assert {p.style for p in found} == {"classical", "jazz"}
    for performed, constant, per_pitch, played in zip(
            found, result.velocities["constant"], result.velocities["per_pitch"],
            result.velocities["chosen"]):
        wanted = constant if performed.style == "classical" else per_pitch
        np.testing.assert_array_equal(played, wanted)
    assert evaluation.styles_of(chosen) == ["classical", "jazz"]
    evaluation.check_styles(found, [*parts, chosen])
    classical_only = derived_systems.parse_per_style("c=classical:constant", ["constant"])
    with pytest.raises(ValueError, match="c has no style jazz"):
        evaluation.check_styles(found, [parts[0], classical_only])


@pytest.mark.parametrize("spec, words", [
    ("chosen", "expected NAME=STYLE:SYSTEM"), ("chosen=", "expected NAME=STYLE:SYSTEM"),
    ("constant=jazz:per_pitch", "already the name"),
    ("chosen=jazz:tree", "'jazz:tree' is not STYLE:SYSTEM"),
    ("chosen=jazz", "'jazz' is not STYLE:SYSTEM"), ("chosen=:constant", "':constant' is not"),
    ("chosen=jazz:constant,jazz:per_pitch", "style 'jazz' is named twice")])
def test_a_bad_per_style_spec_is_one_line(spec, words):
    with pytest.raises(ValueError, match=words) as raised:
        derived_systems.parse_per_style(spec, ["constant", "per_pitch"])
    assert "\n" not in str(raised.value)
