"""stylenet_jax.stylize, the command line: the README command, files and folders, flags,
baselines, bad input as one line and status 2."""

import os
import subprocess
import sys

import mido
import numpy as np
import pytest

from data_prep.synthetic import write_synthetic_corpus
from midi_factory import END_OF_TRACK, midi_file, note_events, notes_track, smf_bytes
from performer_factory import (ROOT, STYLES, assert_only_piano_velocities_changed,
                               assert_plays_as_recorded, broken_exports, cli, export_tiny_model,
                               piano_velocities, rich_file, shipped_reference)
from side_by_side import run_side_by_side
from stylenet_jax import dynamics, encoding, midi, performances, smf, style_choice
from stylenet_jax.feature_baseline import FeatureBaseline


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return export_tiny_model(str(tmp_path_factory.mktemp("model") / "model.npz"))


def test_cli_file_list_styles_and_default_output(tmp_path, model_path):
    source = rich_file(str(tmp_path / "in.mid"))
    styles = cli("--list_styles", f"--checkpoint={model_path}")
    assert styles.returncode == 0 and styles.stdout.split() == STYLES
    done = cli(source, "--style", "jazz", f"--checkpoint={model_path}")
    assert done.returncode == 0, done.stderr
    assert "notes changed, velocity min" in done.stdout and "style jazz" in done.stdout
    assert os.path.isfile(tmp_path / "in.jazz.mid")  # beside INPUT, never INPUT itself
    assert_only_piano_velocities_changed(source, str(tmp_path / "in.jazz.mid"))
    helped = cli("--help")
    assert "--style" in helped.stdout and "--baseline" in helped.stdout


def test_cli_folder_mode_reports_bad_files_and_performs_the_rest(tmp_path, model_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rich_file(str(src / "a.mid"))
    rich_file(str(src / "sub" / "b.midi"), bars=4)
    (src / "broken.mid").write_bytes(b"MThd nonsense")
    (src / "notes.txt").write_text("not a MIDI file name")
    done = cli(str(src), "-o", str(tmp_path / "out"), "--style", "classical=0.5,jazz=0.5",
               f"--checkpoint={model_path}")
    assert done.returncode == 2
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mid", "sub"]
    assert os.listdir(tmp_path / "out" / "sub") == ["b.midi"]
    assert done.stderr.strip().splitlines() == [line for line in done.stderr.strip().splitlines()
                                                if "broken.mid" in line]
    assert "performed 2 of 3 files" in done.stdout


def _bad_cases(tmp_path, model_path):
    good = rich_file(str(tmp_path / "good.mid"), bars=2)
    (tmp_path / "text.mid").write_text("hello")
    (tmp_path / "empty.mid").write_bytes(b"")
    (tmp_path / "trunc.mid").write_bytes(open(good, "rb").read()[:60])
    midi_file(notes_track([(0, 480, 60, 80)]), notes_track([(0, 480, 62, 80)]),
              type=2).save(str(tmp_path / "fmt2.mid"))
    midi_file(notes_track([(0, 480, 36, 80)], channel=9)).save(str(tmp_path / "drums.mid"))
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    ck = f"--checkpoint={model_path}"
    out = str(tmp_path / "out.mid")
    return [
        ([str(tmp_path / "text.mid"), "-o", out, "--style=jazz", ck], "text.mid"),
        ([str(tmp_path / "empty.mid"), "-o", out, "--style=jazz", ck], "empty file"),
        ([str(tmp_path / "trunc.mid"), "-o", out, "--style=jazz", ck], "truncated"),
        ([str(tmp_path / "fmt2.mid"), "-o", out, "--style=jazz", ck], "format 2"),
        ([str(tmp_path / "drums.mid"), "-o", out, "--style=jazz", ck], "no piano notes"),
        ([str(tmp_path / "missing.mid"), "-o", out, "--style=jazz", ck], "no such file"),
        ([good, "-o", str(tmp_path / "no" / "dir" / "out.mid"), "--style=jazz", ck],
         "cannot write"),
        ([good, "-o", out, "--style=rock", ck], "unknown style 'rock'"),
        ([good, "-o", out, "--style=jazz=0.6,classical=0.6", ck], "sum to 1"),
        ([good, "-o", out, "--style=jazz=nan", ck], "not a finite number"),
        ([good, "-o", out, "--baseline=random", "--seed=-1"], "--seed must be 0 or more"),
        ([good, "-o", out, "--style=jazz", "--bogus", ck], "Unknown command line flag 'bogus'"),
        ([good, "-o", out, "--seed=x"], "flag --seed=x"),
        ([good, "-o", out, "--style=jazz", f"--checkpoint={tmp_path / 'bad.npz'}"], "bad.npz"),
        ([good, "-o", out, "--style=jazz", f"--checkpoint={tmp_path / 'none.npz'}"], "none.npz"),
    ]


@pytest.fixture(scope="module")
def features_model(tmp_path_factory):
    """A tiny tree baseline (classical, jazz) trained on a generated corpus, saved."""
    folder = tmp_path_factory.mktemp("features")
    write_synthetic_corpus(str(folder / "midi"), styles=STYLES, songs_per_style=3, steps=128)
    model = FeatureBaseline.fit(performances.from_folder(str(folder / "midi")), log=print,
                                max_iter=15, max_leaf_nodes=7)
    model.save(str(folder / "features.pkl"))
    return str(folder / "features.pkl")


def test_cli_features_baseline_performs_with_the_tree_model(tmp_path, features_model):
    source = rich_file(str(tmp_path / "in.mid"), bars=4)
    done = cli(source, "--baseline", "features", "--style", "jazz",
               f"--features_model={features_model}")
    assert done.returncode == 0, done.stderr
    assert "baseline features (jazz)" in done.stdout
    target = str(tmp_path / "in.features-jazz.mid")
    assert_only_piano_velocities_changed(source, target) > 0
    perf = midi.load_performance(source)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    expected = FeatureBaseline.load(features_model).predict(
        notes, perf.ticks_per_beat, "jazz", midi.tick_seconds(perf.midi, notes.start))
    written = midi.load_performance(target).notes
    np.testing.assert_array_equal(written.select(encoding.in_piano_range(written)).velocity,
                                  expected)


def test_cli_features_baseline_bad_model_or_style_is_one_line_exit_2(tmp_path, features_model):
    good = rich_file(str(tmp_path / "good.mid"), bars=2)
    (tmp_path / "corrupt.pkl").write_bytes(b"\x80\x05 not a model")
    out = str(tmp_path / "out.mid")
    cases = [(f"--features_model={tmp_path / 'missing.pkl'}", "--style=jazz", "missing.pkl"),
             (f"--features_model={tmp_path / 'corrupt.pkl'}", "--style=jazz", "corrupt"),
             (f"--features_model={features_model}", "--style=jazz=0.5,classical=0.5",
              "no blends"),
             (f"--features_model={features_model}", "--style=rock", "one of classical, jazz")]
    for model_flag, style_flag, expected in cases:
        done = cli(good, "-o", out, "--baseline=features", model_flag, style_flag)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert not os.path.exists(out)


def test_cli_bad_input_is_one_line_exit_2_and_no_output(tmp_path, model_path):
    cases = _bad_cases(tmp_path, model_path)
    for (args, expected), done in zip(cases, run_side_by_side(cli, [a for a, _ in cases])):
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not os.path.exists(tmp_path / "out.mid")  # no case wrote it, whole or in part
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".stylenet-")]


def test_flags_and_a_missing_input_are_answered_before_jax_or_sklearn_load(tmp_path):
    """Answers in a fraction of a second, not the seconds those imports take."""
    for args in (["--seed=x"], [str(tmp_path / "missing.mid"), "--style=jazz"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "stylenet_jax.stylize",
                               *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                    if line.startswith("import time:")}
        assert done.returncode == 2 and "stylenet_jax.style_choice" in imported, done.stderr[-500:]
        assert not imported & {"jax", "sklearn", "stylenet_jax.performer"}


def test_the_readme_command_writes_the_shipped_models_recorded_velocities(tmp_path):
    """`python3 -m stylenet_jax.stylize examples/minuet_in_g.mid -o minuet_jazz.mid --style
    jazz` with the shipped model writes the velocities recorded with it, up to rounding
    (tests/data/minuet_shipped_velocities.json, ``assert_plays_as_recorded``)."""
    reference = shipped_reference()
    target = str(tmp_path / "minuet_jazz.mid")
    done = cli(reference["input"], "-o", target, "--style", "jazz")
    assert done.returncode == 0, done.stderr
    assert "89/89 notes changed" in done.stdout and "style jazz" in done.stdout
    assert_only_piano_velocities_changed(os.path.join(ROOT, reference["input"]), target)
    assert_plays_as_recorded(piano_velocities(target), reference["velocities"]["jazz"], "jazz")


def test_cli_flags_help_cache_and_checkpoint_errors(tmp_path, model_path):
    helped = cli("--help")
    assert helped.returncode == 0 and "--checkpoint" in helped.stdout
    good = rich_file(str(tmp_path / "good.mid"), bars=2)
    (tmp_path / "a_file").write_text("")
    done = cli(good, "-o", str(tmp_path / "out.mid"), "--style=jazz",
               f"--checkpoint={model_path}", f"--cache_dir={tmp_path / 'a_file'}")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: --cache_dir ") and "compiling without a cache" in (
        done.stderr)
    piped = subprocess.run([sys.executable, "-m", "stylenet_jax.stylize", good, "-o",
                            "/dev/stdout", "--style=jazz", f"--checkpoint={model_path}",
                            "--cache_dir="], cwd=ROOT, capture_output=True, timeout=300)
    assert piped.returncode == 0 and b"notes changed" in piped.stderr
    assert len(smf.parse_midi(piped.stdout)[0].tracks) == 4  # the MIDI bytes alone
    nan, _ = broken_exports(tmp_path, model_path)["nan"]
    done = cli(good, "-o", str(tmp_path / "out2.mid"), "--style=jazz", f"--checkpoint={nan}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "non-finite" in done.stderr
    assert not os.path.exists(tmp_path / "out2.mid")


def test_cli_folder_mode_names_inputs_escapes_odd_names_and_repairs_with_warnings(
        tmp_path, model_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "deep" / "er").mkdir(parents=True)
    rich_file(os.fsdecode(bytes(src) + b"/caf\xe9.mid"), bars=2)  # not UTF-8
    (src / "deep" / "er" / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00")
    (src / "sub" / "fmt3.kar").write_bytes(smf_bytes(note_events([(0, 60, 80, 96)])
                                                     + END_OF_TRACK, fmt=3))
    (out / "blocked.mid").mkdir(parents=True)  # the output path of an input is a folder
    rich_file(str(src / "blocked.mid"), bars=2)
    done = cli(str(src), "-o", str(out), "--style=jazz", f"--checkpoint={model_path}",
               env={"PYTHONIOENCODING": "utf-8:strict"})
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {src}/blocked.mid: {out}/blocked.mid: is a folder")
    assert errors[1].startswith(f"error: {src}/deep/er/bad.mid: truncated")
    assert f"warning: {src}/sub/fmt3.kar: unknown MIDI format 3" in done.stderr
    assert "caf\\xe9.mid: " in done.stdout and "performed 2 of 4 files" in done.stdout
    assert sorted(os.listdir(out)) == ["blocked.mid", "caf\udce9.mid", "sub"]  # no deep/er
    assert mido.MidiFile(str(out / "sub" / "fmt3.kar")).type == 1


def _own_and_written(source, target):
    return np.array(piano_velocities(source)), np.array(piano_velocities(target))


def test_cli_controls_change_the_written_velocities_as_stated(tmp_path, model_path):
    """--contrast, --strength, --keep_level and --velocity_range, on a baseline and on the
    model."""
    source = rich_file(str(tmp_path / "in.mid"), bars=4)
    own = np.array(piano_velocities(source))
    drawn = style_choice.baseline_velocities("random", len(own), seed=0)
    out = str(tmp_path / "out.mid")

    def written(*flags):
        done = cli(source, "-o", out, *flags)
        assert done.returncode == 0, done.stderr
        return np.array(piano_velocities(out)), done.stdout

    velocities, stdout = written("--baseline=random", "--strength=0")
    assert velocities.tolist() == own.tolist() and f"0/{len(own)} notes changed" in stdout
    assert "baseline random, strength 0," in stdout
    velocities, _ = written("--baseline=random", "--strength=0.5")
    assert velocities.tolist() == np.floor(0.5 * own + 0.5 * drawn + 0.5).astype(int).tolist()
    velocities, stdout = written("--baseline=random", "--velocity_range=40,60")
    assert (velocities.min(), velocities.max()) == (40, 60) and "range 40-60" in stdout
    assert np.all(np.diff(velocities[np.argsort(drawn, kind="stable")]) >= 0)  # shape kept
    velocities, stdout = written("--baseline=random", "--keep_level")
    assert abs(velocities.mean() - own.mean()) < 2 and "level kept" in stdout
    assert velocities.tolist() == dynamics.keep_level(drawn, own).tolist()
    velocities, stdout = written("--baseline=random", "--contrast=0.5")
    assert velocities.tolist() == dynamics.widen(drawn, 0.5).tolist() and "contrast 0.5" in stdout
    assert velocities.std() < 0.6 * drawn.std()
    velocities, _ = written("--baseline=constant", "--velocity=64", "--velocity_range=40,61")
    assert set(velocities.tolist()) == {51}  # a flat performance goes to the middle

    model_velocities, _ = written("--style=jazz", f"--checkpoint={model_path}")
    velocities, stdout = written("--style=jazz", f"--checkpoint={model_path}", "--strength=0.5",
                                 "--keep_level", "--velocity_range=40,60", "--contrast=1.5")
    expected = dynamics.Controls(0.5, True, (40, 60), 1.5).apply(model_velocities, own)
    assert velocities.tolist() == expected.tolist()
    assert (velocities.min(), velocities.max()) == (40, 60)
    assert "style jazz, contrast 1.5, strength 0.5, level kept, range 40-60" in stdout
    assert_only_piano_velocities_changed(source, out)


def test_cli_bad_control_values_are_one_line_exit_2(tmp_path):
    good = rich_file(str(tmp_path / "good.mid"), bars=2)
    out = str(tmp_path / "out.mid")
    cases = [("--strength=1.5", "--strength must be a number in 0..1, got 1.5"),
             ("--strength=-0.1", "--strength must be a number in 0..1"),
             ("--strength=nan", "--strength must be a number in 0..1, got nan"),
             ("--strength=x", "flag --strength=x"),
             ("--velocity_range=60,40", "--velocity_range: LO 60 is above HI 40"),
             ("--velocity_range=0,60", "--velocity_range: 0 is outside 1..127"),
             ("--velocity_range=40,128", "--velocity_range: 128 is outside 1..127"),
             ("--velocity_range=40", "--velocity_range must be LO,HI"),
             ("--velocity_range=forty,60", "--velocity_range must be LO,HI"),
             ("--contrast=-1", "--contrast must be a number in 0..4"),
             ("--contrast=5", "--contrast must be a number in 0..4")]
    for flag, expected in cases:
        done = cli(good, "-o", out, "--baseline=random", flag)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (flag, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert not os.path.exists(out)


def test_cli_blend_names_carry_weights_whatever_the_order(tmp_path, model_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    done = cli(source, "--style", "jazz=0.3,classical=0.7", f"--checkpoint={model_path}")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.classical70-jazz30.mid", "in.mid"]
    assert "style jazz=0.3,classical=0.7" in done.stdout


def test_cli_warns_when_a_baseline_ignores_the_style_and_names_spikes(tmp_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    done = cli(source, "-o", str(tmp_path / "r.mid"), "--baseline=random", "--style=jazz")
    assert done.returncode == 0 and done.stderr == (
        "warning: --baseline random ignores --style (jazz)\n")
    done = cli(source, "-o", str(tmp_path / "c.mid"), "--baseline=constant", "--velocity=120")
    assert done.returncode == 0 and done.stderr == ""
    notes = len(piano_velocities(source))
    assert f"max 120, {notes} notes at 120 (spikes?), baseline constant" in done.stdout


def test_cli_text_file_is_not_a_midi_file(tmp_path):
    (tmp_path / "text.mid").write_text("hello")
    done = cli(str(tmp_path / "text.mid"), "-o", str(tmp_path / "out.mid"), "--baseline=random")
    assert done.returncode == 2 and "not a MIDI file" in done.stderr


def _band(path):
    """Piano (program 0) on channel 1 in track 0, bass (program 33) on channel 2 in track 1."""
    def part(channel, number, pitch):
        return notes_track([(i * 240, i * 240 + 200, pitch + i % 5, 70) for i in range(16)],
                           channel=channel,
                           extra=[(0, mido.Message("program_change", program=number,
                                                   channel=channel))])
    midi_file(part(0, 0, 60), part(1, 33, 36)).save(path)
    return path


def _track_bytes(path, number):
    return [m.bytes() for m in mido.MidiFile(path).tracks[number] if not m.is_meta]


def test_cli_performs_the_piano_part_or_the_tracks_and_channels_chosen(tmp_path, model_path):
    source = _band(str(tmp_path / "band.mid"))
    piano, bass = str(tmp_path / "piano.mid"), str(tmp_path / "bass.mid")
    done = cli(source, "-o", piano, "--style=jazz", f"--checkpoint={model_path}")
    assert done.returncode == 0, done.stderr
    assert "/16 notes changed (16 non-piano notes left as they were: program 33)" in done.stdout
    assert _track_bytes(piano, 1) == _track_bytes(source, 1)
    assert _track_bytes(piano, 0) != _track_bytes(source, 0)
    done = cli(source, "-o", bass, "--baseline=constant", "--velocity=99", "--channels=2")
    assert done.returncode == 0, done.stderr
    assert "16/16 notes changed (16 notes outside --channels=2 left as they were)" in done.stdout
    assert _track_bytes(bass, 0) == _track_bytes(source, 0)
    assert [m.velocity for m in mido.MidiFile(bass).tracks[1] if m.type == "note_on"] == [99] * 16
    done = cli(source, "-o", str(tmp_path / "all.mid"), "--baseline=constant", "--tracks=0,1")
    assert done.returncode == 0 and "32/32 notes changed, velocity" in done.stdout, done.stdout


def test_cli_refuses_a_file_with_nothing_to_perform_and_bad_choices(tmp_path):
    source, out = str(tmp_path / "strings.mid"), str(tmp_path / "out.mid")
    midi_file(notes_track([(0, 480, 60, 80)], channel=0,
                          extra=[(0, mido.Message("program_change", program=40))]),
              notes_track([(0, 480, 55, 80)], channel=1,
                          extra=[(0, mido.Message("program_change", program=42,
                                                  channel=1))])).save(source)
    cases = [((), "no piano notes (programs 40, 42 only): use --channels or --tracks to choose"),
             (("--tracks=5",), "no notes on --tracks=5 (notes are on tracks 0, 1, channels 1, 2)"),
             (("--channels=x",), "--channels: 'x' is not a number"),
             (("--channels=17",), "--channels: 17 is out of range 1..16"),
             (("--channels=10",), "--channels: 10 is the drum channel"),
             (("--tracks=-1",), "--tracks: -1 is out of range")]
    for flags, expected in cases:
        done = cli(source, "-o", out, "--baseline=random", *flags)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (flags, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert not os.path.exists(out)
