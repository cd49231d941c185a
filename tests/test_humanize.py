"""stylenet_jax.humanize: the scatter's parts, its fit, its file; and where it is used
(stylize --humanize, evaluate --humanize, experiments.fit_humanize)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from performer_factory import (ROOT, assert_only_piano_velocities_changed, cli,
                               export_tiny_model, piano_velocities, rich_file)
from stylenet_jax import derived_systems, encoding, evaluation, humanize, midi, performances
from performance_factory import RISING_CLASSICAL, performance_file, performance_folder


def _groups(sizes):
    """Onset groups (int64) of notes in groups of the given sizes, in order."""
    return np.repeat(np.arange(len(sizes)), sizes)


def test_onset_groups_number_the_onset_steps_in_time_order():
    np.testing.assert_array_equal(humanize.onset_groups(np.array([0, 0, 4, 9, 9, 9, 12])),
                                  [0, 0, 1, 2, 2, 2, 3])
    assert humanize.onset_groups(np.zeros(0, np.int64)).shape == (0,)


def test_each_part_moves_the_notes_it_says():
    groups = _groups([1, 3, 1, 2, 1])
    rng = np.random.default_rng(0)
    voice = humanize.sample(humanize.Scatter(0, 0, 0, 5), groups, rng)
    lone = np.bincount(groups)[groups] == 1
    assert np.all(voice[lone] == 0) and np.all(voice[~lone] != 0)  # a lone note has no voice
    chord = humanize.sample(humanize.Scatter(0, 0, 5, 0), groups, rng)
    for group in range(5):  # a chord moves as one
        assert np.ptp(chord[groups == group]) == 0
    assert len(set(np.round(chord, 9))) == 5
    assert humanize.sample(humanize.Scatter(3, 0.5, 2, 1), np.zeros(0, int), rng).shape == (0,)


def test_the_slow_part_has_its_sd_and_correlation():
    groups = np.arange(40_000)
    slow = humanize.sample(humanize.Scatter(6.0, 0.9, 0, 0), groups, np.random.default_rng(1))
    assert abs(slow.std() - 6.0) < 0.4
    assert abs(np.corrcoef(slow[1:], slow[:-1])[0, 1] - 0.9) < 0.02
    assert abs(np.corrcoef(slow[10:], slow[:-10])[0, 1] - 0.9 ** 10) < 0.05


def test_fit_recovers_the_scatter_it_was_drawn_from():
    truth = humanize.Scatter(slow_sd=6.0, slow_phi=0.9, chord_sd=4.0, voice_sd=5.0)
    rng = np.random.default_rng(2)
    residuals, groups = [], []
    for _ in range(12):
        group = _groups(rng.integers(1, 5, size=2500))
        drawn = humanize.sample(truth, group, rng)
        residuals.append(drawn + rng.normal(0, 3))  # a performance's level is not scatter
        groups.append(group)
    fitted = humanize.fit(residuals, groups)
    assert abs(fitted.slow_phi - truth.slow_phi) < 0.03
    for field in ("slow_sd", "chord_sd", "voice_sd"):
        assert abs(getattr(fitted, field) - getattr(truth, field)) < 0.1 * getattr(truth, field)


def test_fit_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="same performances"):
        humanize.fit([np.zeros(5)], [])
    with pytest.raises(ValueError, match="too few onset groups"):
        humanize.fit([np.arange(5.0)], [np.arange(5)])


def test_humanize_is_seeded_rounded_clipped_and_zero_is_nothing():
    velocities = np.array([1, 5, 64, 64, 120, 127, 64, 30])
    groups = _groups([1, 1, 2, 1, 1, 1, 1])
    scatter = humanize.Scatter(10, 0.8, 10, 10)
    rng = np.random.default_rng(3)
    unchanged = humanize.humanize(velocities, groups, scatter, 0.0, rng)
    np.testing.assert_array_equal(unchanged, velocities)
    assert rng.bit_generator.state == np.random.default_rng(3).bit_generator.state  # no draw
    one = humanize.humanize(velocities, groups, scatter, 0.75, np.random.default_rng(4))
    again = humanize.humanize(velocities, groups, scatter, 0.75, np.random.default_rng(4))
    other = humanize.humanize(velocities, groups, scatter, 0.75, np.random.default_rng(5))
    np.testing.assert_array_equal(one, again)
    assert not np.array_equal(one, other)
    assert one.dtype == np.int64 and one.min() >= 1 and one.max() <= 127
    expected = velocities + 0.75 * humanize.sample(scatter, groups, np.random.default_rng(4))
    np.testing.assert_array_equal(one, np.clip(np.floor(expected + 0.5), 1, 127))


@pytest.mark.parametrize("value", [-0.1, 2.5, "nan", "x", None])
def test_a_bad_amount_is_one_line(value):
    with pytest.raises(humanize.HumanizeError, match=r"--humanize must be a number in 0\.\.2"):
        humanize.check_amount(value)


def test_a_blend_mixes_variances_and_a_missing_style_is_named():
    scatters = {"a": humanize.Scatter(3, 0.5, 4, 0), "b": humanize.Scatter(4, 0.9, 0, 2)}
    mixed = humanize.for_blend(scatters, {"a": 0.5, "b": 0.5})
    assert mixed.slow_sd == pytest.approx(np.sqrt(12.5)) and mixed.slow_phi == pytest.approx(0.7)
    assert mixed.chord_sd == pytest.approx(np.sqrt(8))
    assert mixed.voice_sd == pytest.approx(np.sqrt(2))
    assert humanize.for_blend(scatters, {"b": 1.0}) == scatters["b"]
    with pytest.raises(humanize.HumanizeError, match="no style c"):
        humanize.for_blend(scatters, {"c": 1.0})
    with pytest.raises(humanize.HumanizeError, match="slow_phi"):
        humanize.Scatter(1, 1.0, 1, 1)


def test_the_file_round_trips_and_a_bad_one_is_one_line(tmp_path):
    path = str(tmp_path / "scatter.json")
    scatters = {"jazz": humanize.Scatter(1.5, 0.25, 2.0, 3.0)}
    humanize.save(path, scatters, "python -m experiments.fit_humanize", {"data": "x"})
    assert humanize.load(path) == scatters
    assert json.loads(open(path).read())["made_by"] == "python -m experiments.fit_humanize"
    for text, words in (("{", "not a readable"), ('{"format": "other"}', "not a stylenet-"),
                        ('{"format": "stylenet-humanize", "version": 1, "styles": '
                         '{"jazz": {"slow_sd": 1}}}', "malformed")):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(humanize.HumanizeError, match=words) as raised:
            humanize.load(str(tmp_path / "bad.json"))
        assert "\n" not in str(raised.value)
    with pytest.raises(humanize.HumanizeError,
                       match="no such file .*learned, mild, per_style, both_judges, gaussian"):
        humanize.load(str(tmp_path / "missing.json"))


def test_a_scatter_is_chosen_by_a_shipped_name_or_a_path_and_named_in_output_files(
        tmp_path, monkeypatch):
    assert humanize.scatter_path(None) == humanize.DEFAULT_PATH == humanize.LEARNED_PATH
    for name, path in (("learned", humanize.LEARNED_PATH), ("mild", humanize.MILD_PATH),
                       ("both_judges", humanize.BOTH_JUDGES_PATH),
                       ("gaussian", humanize.GAUSSIAN_PATH)):
        assert humanize.scatter_path(name) == path and os.path.isfile(path)
        assert humanize.scatter_label(name) == humanize.scatter_label(path) == (
            "" if name == "learned" else name)  # the default names no output file
    assert humanize.scatter_label(None) == ""
    mine = str(tmp_path / "my scatter(2)!.npz")
    assert humanize.scatter_path(mine) == mine
    assert humanize.scatter_label(mine) == "myscatter2"
    assert humanize.scatter_label(str(tmp_path / "\u00e9.json")) == "scatter"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mild").write_text("{}")  # a file of that name wins over the shipped name
    assert humanize.scatter_path("mild") == "mild" and humanize.scatter_label("mild") == "mild"


def test_the_shipped_gaussian_scatter_covers_the_shipped_styles():
    shipped = humanize.load(humanize.GAUSSIAN_PATH)
    assert sorted(shipped) == ["classical", "jazz", "pop"]
    for scatter in shipped.values():
        assert 0 < scatter.slow_phi < 1 and min(scatter.slow_sd, scatter.chord_sd,
                                                scatter.voice_sd) > 0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return export_tiny_model(str(tmp_path_factory.mktemp("model") / "model.npz"))


@pytest.mark.parametrize("scatter_choice, shown, palette", [
    (None, "", False), (None, "", True), (humanize.GAUSSIAN_PATH, "gaussian", False),
    ("mild", "mild", False), ("per_style", "per_style", False),
    ("both_judges", "both_judges", True)])
def test_stylize_humanize_adds_the_seeded_scatter_before_the_controls(tmp_path, model_path,
                                                                      scatter_choice, shown,
                                                                      palette):
    """... and, with --palette, plays the draw on the style's velocity palette."""
    source = rich_file(str(tmp_path / "in.mid"), bars=4)
    plain = cli(source, "--style=jazz", f"--checkpoint={model_path}")
    assert plain.returncode == 0, plain.stderr
    model = np.array(piano_velocities(str(tmp_path / "in.jazz.mid")))
    chosen = [f"--humanize_scatter={scatter_choice}"] if scatter_choice else []
    done = cli(source, "--style=jazz", f"--checkpoint={model_path}", "--humanize=0.75",
               "--seed=2", "--contrast=1.5", *chosen, *(["--palette"] if palette else []))
    assert done.returncode == 0, done.stderr
    named = f"-{shown}" if shown else ""  # a scatter other than the default joins the name
    named += "-palette" if palette else ""
    target = str(tmp_path / f"in.jazz-humanize75{named}-seed2-contrast150.mid")
    assert sorted(os.listdir(tmp_path)) == sorted(["in.mid", "in.jazz.mid",
                                                   os.path.basename(target)])
    in_brackets = f" ({shown})" if shown else ""
    on = " on the palette" if palette else ""
    assert f"style jazz, humanize 0.75{in_brackets}{on} seed 2, contrast 1.5" in done.stdout
    assert_only_piano_velocities_changed(source, target)
    performance = midi.load_performance(source)
    notes = performance.notes.select(encoding.in_piano_range(performance.notes))
    rng = np.random.default_rng(2)  # the draw's, then the palette's
    if shown == "gaussian":  # the Gaussian parts over the notes' onset groups
        onset, _ = encoding.quantize(notes, performance.ticks_per_beat)
        drawn = humanize.humanize(model, humanize.onset_groups(onset),
                                  humanize.load(scatter_choice)["jazz"], 0.75, rng)
    else:  # a learned scatter (the shipped default, the mild one, one per style)
        scatter = humanize.load(scatter_choice)
        assert scatter.__class__.__name__ == ("PerStyleScatter" if shown == "per_style"
                                              else "LearnedScatter")
        drawn = scatter.for_blend({"jazz": 1.0}).humanize(
            model, notes, performance.ticks_per_beat,
            midi.tick_seconds(performance.midi, notes.start), 0.75, rng)
    from stylenet_jax import dynamics, velocity_palette

    played = (velocity_palette.load().for_blend({"jazz": 1.0}).play(drawn, rng) if palette
              else drawn)
    np.testing.assert_array_equal(piano_velocities(target), dynamics.widen(played, 1.5))
    assert not np.array_equal(drawn, model)
    assert np.array_equal(played, drawn) != palette  # the palette moved some notes


def test_stylize_warns_that_a_scatter_or_palette_without_humanize_does_nothing(tmp_path,
                                                                             model_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    plain = cli(source, "--style=jazz", f"--checkpoint={model_path}")
    alone = cli(source, "--style=jazz", f"--checkpoint={model_path}", "--humanize_scatter=mild",
                "--palette", "-o", str(tmp_path / "alone.mid"))
    assert plain.returncode == alone.returncode == 0, alone.stderr
    assert alone.stderr.strip().splitlines() == [
        "warning: --humanize_scatter (mild) draws nothing without --humanize (e.g. --humanize 1)",
        "warning: --palette plays nothing without --humanize (e.g. --humanize 1)"]
    assert "humanize" not in alone.stdout.split(":", 1)[1]
    assert (tmp_path / "alone.mid").read_bytes() == (tmp_path / "in.jazz.mid").read_bytes()


def test_stylize_asks_for_the_palette_a_scatter_learned_on(tmp_path, model_path):
    from stylenet_jax import learned_scatter

    shipped = learned_scatter.load()
    trained_on = str(tmp_path / "on_palette.npz")
    learned_scatter.save(trained_on, shipped.params, shipped.styles, "a test",
                         {**shipped.about, "palette": "velocity_palette.json"})
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    runs = {palette: cli(source, "--style=jazz", f"--checkpoint={model_path}", "--humanize=1",
                         f"--humanize_scatter={trained_on}", *palette, "-o",
                         str(tmp_path / f"out{len(palette)}.mid"))
            for palette in ((), ("--palette",))}
    assert all(done.returncode == 0 for done in runs.values()), runs
    assert runs[()].stderr.strip().splitlines() == [
        "warning: this scatter learned to play on the velocity palette (train_scatter "
        "--palette): add --palette to play it as it was trained"]
    assert "warning" not in runs[("--palette",)].stderr


def test_stylize_humanize_refusals_are_one_line_and_write_nothing(tmp_path, model_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    out = str(tmp_path / "out.mid")
    (tmp_path / "other.json").write_text(json.dumps({
        "format": "stylenet-humanize", "version": 1,
        "styles": {"pop": {"slow_sd": 1, "slow_phi": 0.5, "chord_sd": 1, "voice_sd": 1}}}))
    for flags, words in ((["--baseline=random", "--humanize=1"], "has no style to scatter"),
                         (["--style=jazz", "--humanize=3"], "--humanize must be a number"),
                         (["--style=jazz", f"--humanize_scatter={tmp_path / 'other.json'}",
                           "--humanize=1"], "has no style jazz"),
                         (["--style=jazz", "--humanize_scatter=mld", "--humanize=1"],
                          "mld: no such file (a scatter file, or a shipped scatter: learned, "
                          "mild, per_style, both_judges, gaussian)")):
        done = cli(source, "-o", out, f"--checkpoint={model_path}", *flags)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
        assert not os.path.exists(out)


def test_an_evaluated_humanize_system_draws_per_performance(tmp_path):
    performance_folder(tmp_path)
    found = performances.from_folder(str(tmp_path))
    part = evaluation.PerPitchSystem(RISING_CLASSICAL)
    scatters = humanize.load(humanize.GAUSSIAN_PATH)
    spec = derived_systems.parse_humanize("h=per_pitch:0.5", [part.name], scatters, seed=7)
    assert (spec.part, spec.amount, spec.name, spec.seed) == ("per_pitch", 0.5, "h", 7)
    result = evaluation.evaluate(found, [part, spec])
    for human, played, scattered in zip(found, result.velocities["per_pitch"],
                                        result.velocities["h"]):
        onset, _ = encoding.quantize(human.notes, human.ticks_per_beat)
        rng = np.random.default_rng([7, *human.id.encode()])
        np.testing.assert_array_equal(scattered, humanize.humanize(
            played, humanize.onset_groups(onset), scatters[human.style], 0.5, rng))
        assert not np.array_equal(scattered, played)
    for bad, words in (("h=tree:1", "expected NAME=SYSTEM:AMOUNT"),
                       ("per_pitch=per_pitch:1", "already the name"),
                       ("h=per_pitch:5", "--humanize must be a number")):
        with pytest.raises(ValueError, match=words):
            derived_systems.parse_humanize(bad, [part.name], scatters)


@pytest.mark.slow
def test_fit_humanize_writes_a_scatter_stylize_can_read(tmp_path, model_path):
    """The fit command on a folder of synthetic performances, and its refusals."""
    for style, seeds in (("classical", (1, 2)), ("jazz", (3, 4))):
        os.makedirs(tmp_path / "human" / style)
        for seed in seeds:
            performance_file(str(tmp_path / "human" / style / f"piece{seed}.mid"), seed)
    out = tmp_path / "scatter.json"
    args = [sys.executable, "-m", "experiments.fit_humanize", f"--midi_dir={tmp_path / 'human'}",
            f"--checkpoint={model_path}", f"--out={out}", "--max_lag=4", "--noprogress"]
    run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert sorted(humanize.load(str(out))) == ["classical", "jazz"]
    assert "wrote" in run.stdout and "classical: slow_sd" in run.stdout
    bad = subprocess.run(args[:4] + ["--checkpoint=/nonexistent.npz", f"--out={out}x"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not os.path.exists(f"{out}x")
