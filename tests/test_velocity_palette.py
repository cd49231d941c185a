"""stylenet_jax.velocity_palette: counting a style's velocities, playing a system's on them,
the palette file; and where it is used (evaluate --palette, experiments.fit_palette)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from performer_factory import ROOT
from stylenet_jax import derived_systems, evaluation, performances, velocity_palette
from performance_factory import RISING_CLASSICAL, performance_folder

VP = velocity_palette


def _lumpy_counts():
    """A palette over 20..89 that never has 53 and has 36 twice as often as its neighbours."""
    counts = np.zeros(VP.VELOCITIES)
    counts[20:90] = 10.0
    counts[53], counts[36] = 0.0, 20.0
    return counts


def test_a_flat_palette_leaves_every_velocity_where_it_was():
    counts = np.zeros(VP.VELOCITIES)
    counts[1:] = 3
    velocities = np.random.default_rng(0).integers(1, 128, 5000)
    played = VP.Palette(counts).play(velocities, np.random.default_rng(1))
    assert played.dtype == np.int64
    np.testing.assert_array_equal(played, velocities)


def test_a_lumpy_palette_gives_each_value_its_share_and_moves_notes_a_step_at_most():
    rng = np.random.default_rng(0)
    velocities = rng.integers(22, 88, 200_000)  # spread evenly, as a smooth scatter spreads
    played = VP.Palette(_lumpy_counts()).play(velocities, rng)
    written = np.bincount(played, minlength=VP.VELOCITIES)
    assert written[53] == 0  # never what the instrument never sends
    around = (written[34] + written[35] + written[37] + written[38]) / 4
    assert 1.8 < written[36] / around < 2.2  # twice its neighbours' share, as played
    assert np.abs(played - velocities).max() <= 1
    assert abs(float(np.mean(played - velocities))) < 0.02  # no change of level


def test_velocities_beyond_the_palette_go_to_its_nearest_end_and_a_draw_repeats():
    palette = VP.Palette(_lumpy_counts())
    np.testing.assert_array_equal(palette.play(np.array([1, 5, 127, 100]),
                                               np.random.default_rng(0)), [20, 20, 89, 89])
    many = np.arange(1, 128).repeat(3)
    assert np.array_equal(palette.play(many, np.random.default_rng(4)),
                          palette.play(many, np.random.default_rng(4)))
    assert palette.play(np.zeros(0, np.int64), np.random.default_rng(0)).shape == (0,)


def test_a_blend_weighs_each_styles_shares_and_needs_a_palette_for_each_style():
    low, high = np.zeros(VP.VELOCITIES), np.zeros(VP.VELOCITIES)
    low[10], high[100] = 5, 500  # counts of different sizes: each style counts as its weight
    palettes = VP.Palettes({"a": VP.Palette(low), "b": VP.Palette(high)}, {})
    blended = palettes.for_blend({"a": 0.25, "b": 0.75}).counts
    assert blended[10] == pytest.approx(0.25) and blended[100] == pytest.approx(0.75)
    np.testing.assert_array_equal(palettes.for_blend({"a": 1.0, "c": 0.0}).counts, low / 5)
    with pytest.raises(VP.PaletteError, match="no velocity palette for c \\(it has a, b\\)"):
        palettes.for_blend({"a": 0.5, "c": 0.5})


def test_count_adds_each_styles_velocities_in_range():
    counts = VP.count([("a", np.array([1, 1, 127, 0, 128])), ("b", np.array([64])),
                       ("a", np.array([1]))])
    assert sorted(counts) == ["a", "b"] and counts["a"].dtype == np.int64
    assert counts["a"][1] == 3 and counts["a"][127] == 1 and counts["a"].sum() == 4
    assert counts["b"][64] == counts["b"].sum() == 1


def test_a_palette_file_round_trips_and_a_bad_one_is_one_line(tmp_path):
    path = str(tmp_path / "p.json")
    VP.save(path, {"pop": _lumpy_counts().astype(int)}, "made by hand", {"data": "none"})
    loaded = VP.load(path)
    np.testing.assert_array_equal(loaded.styles["pop"].counts, _lumpy_counts())
    assert loaded.about == {"data": "none"}
    shipped = VP.load()  # the one stylize --humanize plays on
    assert set(shipped.styles) == {"classical", "jazz", "pop"}
    (tmp_path / "text.json").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "x", "styles": {}}))
    (tmp_path / "short.json").write_text(json.dumps(
        {"format": VP.FORMAT, "version": VP.VERSION, "styles": {"pop": [0, 1, 2]}}))
    for name, words in (("missing.json", "not a readable velocity palette"),
                        ("text.json", "not a readable velocity palette"),
                        ("other.json", f"not a {VP.FORMAT} file of version 1"),
                        ("short.json", "a style's palette is malformed")):
        with pytest.raises(VP.PaletteError, match=words) as raised:
            VP.load(str(tmp_path / name))
        assert "\n" not in str(raised.value)


def test_a_palette_system_plays_each_performance_on_its_styles_palette(tmp_path):
    performance_folder(tmp_path)
    found = performances.from_folder(str(tmp_path))
    part = evaluation.PerPitchSystem(RISING_CLASSICAL)
    palettes = VP.Palettes({"classical": VP.Palette(_lumpy_counts()),
                            "jazz": VP.Palette(np.r_[0.0, np.ones(127)])}, {})
    spec = derived_systems.parse_palette("p=per_pitch", [part.name], palettes, seed=7)
    assert (spec.part, spec.name, spec.seed) == ("per_pitch", "p", 7)
    result = evaluation.evaluate(found, [part, spec])
    for human, played, on_palette in zip(found, result.velocities["per_pitch"],
                                         result.velocities["p"]):
        assert on_palette.shape == played.shape
        if human.style == "jazz":  # a flat palette
            np.testing.assert_array_equal(on_palette, played)
        else:
            assert 53 not in on_palette and np.all((on_palette >= 20) & (on_palette <= 89))
    for bad, words in (("p=tree", "expected NAME=SYSTEM with a system of per_pitch"),
                       ("per_pitch=per_pitch", "already the name"), ("p", "expected NAME=")):
        with pytest.raises(ValueError, match=words):
            derived_systems.parse_palette(bad, [part.name], palettes)


def test_fit_palette_counts_each_styles_velocities_and_refuses_bad_input(tmp_path):
    performance_folder(tmp_path / "human")
    out, picture = tmp_path / "palette.json", tmp_path / "palette.png"
    args = [sys.executable, "-m", "experiments.fit_palette", f"--out={out}",
            f"--picture={picture}", "--noprogress"]
    bad = subprocess.run(args + [f"--midi_dir={tmp_path / 'nothing'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert not out.exists() and not picture.exists()
    done = subprocess.run(args + [f"--midi_dir={tmp_path / 'human'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = performances.from_folder(str(tmp_path / "human"))
    loaded = VP.load(str(out))
    for style in ("classical", "jazz"):
        expected = sum(np.bincount(p.notes.velocity, minlength=VP.VELOCITIES)
                       for p in found if p.style == style)
        np.testing.assert_array_equal(loaded.styles[style].counts, expected)
        assert f"{style}: {int(expected.sum())} notes" in done.stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "experiments.fit_palette" in json.loads(out.read_text())["made_by"]
