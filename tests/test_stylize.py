"""stylenet_jax.stylize: performing files, blends, folders, baselines, bad input, long files."""

import os
import resource
import subprocess
import sys

import jax
import jax.numpy as jnp
import mido
import numpy as np
import pytest

from data_prep.synthetic import write_synthetic_corpus
from midi_factory import midi_file, notes_track, tempo, time_signature, track
from stylenet_jax import checkpoints, encoding, midi, performances, stylize
from stylenet_jax.feature_baseline import FeatureBaseline
from stylenet_jax.model import ModelConfig, StyleNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLES = ["classical", "jazz"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A small randomly initialised two-style model, exported like the shipped one."""
    config = ModelConfig(num_styles=2, hidden_size=16, num_layers=2)
    params = StyleNet(config).init(jax.random.key(1), jnp.zeros((1, 4, 176)),
                                   jnp.ones((1,), jnp.int32), train=False)["params"]
    params = jax.tree.map(lambda a: a * 4, params)  # livelier outputs than the tiny init
    path = str(tmp_path_factory.mktemp("model") / "model.npz")
    return checkpoints.export_inference(path, params, config, STYLES)


@pytest.fixture(scope="module")
def stylizer(model_path):
    return stylize.Stylizer(model_path)


def rich_file(path, bars=16):
    """Format 1: conductor (tempo changes, meters), two piano tracks, drums, pedal, program."""
    conductor = track([tempo(96), time_signature(4, 4), tempo(132, 960 * 4),
                       time_signature(3, 4, 960 * 8), (960 * 9, mido.MetaMessage("marker", text="B"))])
    rng = np.random.default_rng(0)
    rh = [(i * 240, i * 240 + 200, int(rng.integers(60, 90)), int(rng.integers(30, 100)))
          for i in range(bars * 16)]
    lh = [(i * 960, i * 960 + 900, int(rng.integers(30, 50)), 50) for i in range(bars * 4)]
    extra = [(0, mido.Message("program_change", program=0, channel=1)),
             (480, mido.Message("control_change", control=64, value=127, channel=1)),
             (1900, mido.Message("control_change", control=64, value=0, channel=1)),
             (10, mido.Message("pitchwheel", pitch=100, channel=1))]
    outside = [(0, 960, 110, 77), (960, 1920, 15, 66)]
    m = midi_file(conductor, notes_track(rh, channel=0, name="RH"),
                  notes_track(lh + outside, channel=1, name="LH", extra=extra),
                  notes_track([(i * 480, i * 480 + 100, 38, 120) for i in range(bars * 8)],
                              channel=9, name="drums"), ticks_per_beat=960)
    m.save(path)
    return path


def assert_only_piano_velocities_changed(source, target):
    """Message by message: same everything except note-on velocities of piano notes."""
    a, b = mido.MidiFile(source), mido.MidiFile(target)
    assert (a.type, a.ticks_per_beat, len(a.tracks)) == (b.type, b.ticks_per_beat, len(b.tracks))
    changed = 0
    for ta, tb in zip(a.tracks, b.tracks):
        assert len(ta) == len(tb)
        for x, y in zip(ta, tb):
            piano_on = (x.type == "note_on" and x.velocity > 0 and x.channel != 9
                        and 21 <= x.note <= 108)
            if piano_on:
                assert x.copy(velocity=y.velocity) == y and 1 <= y.velocity <= 127
                changed += x.velocity != y.velocity
            else:
                assert x == y
    return changed


def test_generated_file_changes_only_piano_velocities(tmp_path, stylizer):
    source = rich_file(str(tmp_path / "in.mid"))
    result = stylize.perform_file(source, str(tmp_path / "out.mid"), stylizer=stylizer,
                                  blend={"jazz": 1.0})
    assert result.notes == 16 * 16 + 16 * 4
    assert assert_only_piano_velocities_changed(source, str(tmp_path / "out.mid")) == result.changed
    assert result.changed > 0 and len(np.unique(result.velocities)) > 5


def test_corpus_files_change_only_piano_velocities(corpus_dir, tmp_path, stylizer):
    for path in sorted(corpus_dir.glob("*/*.mid"))[::120]:
        out = str(tmp_path / path.name)
        stylize.perform_file(str(path), out, stylizer=stylizer, blend={"classical": 1.0})
        assert assert_only_piano_velocities_changed(str(path), out) > 0


def test_blend_is_the_weighted_mean_of_heads(stylizer, tmp_path):
    perf = midi.load_performance(rich_file(str(tmp_path / "in.mid")))
    inputs = encoding.encode(perf.notes.select(encoding.in_piano_range(perf.notes)),
                             perf.ticks_per_beat).inputs
    a = stylizer.predict(inputs, {"classical": 1.0})
    b = stylizer.predict(inputs, {"jazz": 1.0})
    mixed = stylizer.predict(inputs, {"classical": 0.7, "jazz": 0.3})
    assert a.shape == (inputs.shape[0], 88) and a.dtype == np.float32
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_allclose(mixed, 0.7 * a + 0.3 * b, atol=1e-5)


def test_one_compile_serves_files_of_any_length(model_path, tmp_path):
    fresh = stylize.Stylizer(model_path)
    for bars in (2, 40, 130):  # one window, several, more than one call's ROWS
        path = rich_file(str(tmp_path / f"{bars}.mid"), bars=bars)
        stylize.perform_file(path, path + ".out.mid", stylizer=fresh, blend={"jazz": 1.0})
    (predict, _), = fresh._predict.values()
    assert predict._cache_size() == 1


def test_parse_blend_checks_names_and_weights():
    assert stylize.parse_blend("jazz", STYLES) == {"jazz": 1.0}
    assert stylize.parse_blend("classical=0.25, jazz=0.75", STYLES) == {"classical": 0.25,
                                                                        "jazz": 0.75}
    for bad, message in [("rock", "unknown style 'rock'"), ("jazz=0.5", "sum to 1"),
                         ("jazz=x", "not a number"), ("jazz=1.5,classical=-0.5", "negative"),
                         ("", "empty")]:
        with pytest.raises(stylize.StylizeError, match=message):
            stylize.parse_blend(bad, STYLES)


def test_windows_cross_fade_to_the_overlap_add_of_single_windows(stylizer):
    rng = np.random.default_rng(0)
    steps = stylize.ROWS * stylize.HOP + 137  # more windows than one call's ROWS
    inputs = np.zeros((steps, 176), np.uint8)
    on = rng.random((steps, 88)) < 0.05
    inputs[:, 0::2], inputs[:, 1::2] = on, on
    got = stylizer.predict(inputs, {"jazz": 1.0})
    predict, params = stylizer._predictor((1,))
    fade = stylize.window_weights()
    total = np.zeros((steps, 88)); norm = np.zeros((steps, 1))
    for start in range(-stylize.HOP, steps, stylize.HOP):
        window = np.zeros((stylize.ROWS, stylize.WINDOW, 176), np.uint8)
        lo, hi = max(start, 0), min(start + stylize.WINDOW, steps)
        window[0, lo - start:hi - start] = inputs[lo:hi]
        out = np.asarray(predict(params, window, np.ones(1, np.float32)))[0]
        total[lo:hi] += out[lo - start:hi - start] * fade[lo - start:hi - start, None]
        norm[lo:hi] += fade[lo - start:hi - start, None]
    np.testing.assert_allclose(got, total / norm, atol=1e-5)
    # every step but the first and last HOP is covered by two windows whose weights sum to 1
    assert np.allclose(fade[:stylize.HOP] + fade[stylize.HOP:], 1.0)
    assert np.abs(np.diff(fade)).max() <= 1.0 / stylize.HOP + 1e-6


def test_baselines_are_seeded(tmp_path):
    source = rich_file(str(tmp_path / "in.mid"))
    r1 = stylize.perform_file(source, str(tmp_path / "r1.mid"), baseline="random", seed=3)
    r2 = stylize.perform_file(source, str(tmp_path / "r2.mid"), baseline="random", seed=3)
    r3 = stylize.perform_file(source, str(tmp_path / "r3.mid"), baseline="random", seed=4)
    assert (r1.velocities == r2.velocities).all() and (r1.velocities != r3.velocities).any()
    assert r1.velocities.min() >= 1 and r1.velocities.max() <= 127
    c = stylize.perform_file(source, str(tmp_path / "c.mid"), baseline="constant", velocity=80)
    assert set(c.velocities.tolist()) == {80}
    assert assert_only_piano_velocities_changed(source, str(tmp_path / "c.mid")) == c.changed


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "stylenet_jax.stylize", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


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
    for args, expected in _bad_cases(tmp_path, model_path):
        done = cli(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert not os.path.exists(tmp_path / "out.mid")
        assert not [f for f in os.listdir(tmp_path) if f.startswith(".stylenet-")]


@pytest.mark.slow
def test_an_hour_of_notes_completes_with_bounded_memory(tmp_path, model_path):
    """Peak memory for an hour-long file stays within 300 MB of a 30-second file's."""
    def peak_kb(bars):
        path = rich_file(str(tmp_path / f"{bars}.mid"), bars=bars)
        code = ("import resource,sys; from stylenet_jax import stylize as s; "
                f"st=s.Stylizer({model_path!r}); "
                f"r=s.perform_file({path!r}, {path!r}+'.out.mid', stylizer=st, blend={{'jazz':1.0}}); "
                "print(r.notes, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        notes, kb = map(int, done.stdout.split())
        return notes, kb

    short_notes, short_kb = peak_kb(16)
    long_notes, long_kb = peak_kb(2000)  # 2000 bars of 4 beats at 132 bpm: over an hour
    assert long_notes == 2000 * 20 and long_kb - short_kb < 300_000
