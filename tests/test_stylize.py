"""stylenet_jax.stylize: performing files, blends, folders, baselines, bad input, long files."""

import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import mido
import numpy as np
import pytest

from data_prep.synthetic import write_synthetic_corpus
from midi_factory import (END_OF_TRACK, midi_file, note_events, notes_track, smf, tempo,
                          time_signature, track)
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


def every_window(predict, params, inputs):
    """The reference prediction: every window, one per call, from -HOP every HOP steps,
    overlap-added with the cross-fade weights; float64 (T, 88)."""
    steps = len(inputs)
    fade = stylize.window_weights()
    total, norm = np.zeros((steps, 88)), np.zeros((steps, 1))
    for start in range(-stylize.HOP, steps, stylize.HOP):
        window = np.zeros((stylize.ROWS, stylize.WINDOW, 176), np.uint8)
        lo, hi = max(start, 0), min(start + stylize.WINDOW, steps)
        window[0, lo - start:hi - start] = inputs[lo:hi]
        out = np.asarray(predict(params, window, np.ones(1, np.float32)))[0]
        total[lo:hi] += out[lo - start:hi - start] * fade[lo - start:hi - start, None]
        norm[lo:hi] += fade[lo - start:hi - start, None]
    return total / norm


def test_windows_cross_fade_to_the_overlap_add_of_single_windows(stylizer):
    rng = np.random.default_rng(0)
    steps = stylize.ROWS * stylize.HOP + 137  # more windows than one call's ROWS
    inputs = np.zeros((steps, 176), np.uint8)
    on = rng.random((steps, 88)) < 0.05
    inputs[:, 0::2], inputs[:, 1::2] = on, on
    got = stylizer.predict(inputs, {"jazz": 1.0})
    predict, params = stylizer._predictor((1,))
    np.testing.assert_allclose(got, every_window(predict, params, inputs), atol=1e-5)
    fade = stylize.window_weights()
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


def cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "stylenet_jax.stylize", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


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


# ----------------------------------------------------------------------------- silence and length


def dense_velocities(stylizer, perf, blend):
    """The velocities of the whole grid, every window run: what performing used to do."""
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    enc = encoding.encode(notes, perf.ticks_per_beat)
    steps = enc.inputs.shape[0]
    predict, params = stylizer._predictor(tuple(stylizer.styles.index(n) for n in sorted(blend)))
    weights = np.array([blend[n] for n in sorted(blend)], np.float32)
    padded = np.zeros((steps + 2 * stylize.WINDOW, 176), np.uint8)
    padded[stylize.HOP:stylize.HOP + steps] = enc.inputs
    total = np.zeros((len(padded), 88), np.float32)
    norm = np.zeros((len(padded), 1), np.float32)
    fade = stylize.window_weights()
    starts = list(range(0, steps + stylize.HOP, stylize.HOP))
    for first in range(0, len(starts), stylize.ROWS):
        rows = starts[first:first + stylize.ROWS]
        batch = np.zeros((stylize.ROWS, stylize.WINDOW, 176), np.uint8)
        for r, s in enumerate(rows):
            batch[r] = padded[s:s + stylize.WINDOW]
        out = np.asarray(predict(params, batch, weights))
        for r, s in enumerate(rows):
            total[s:s + stylize.WINDOW] += out[r] * fade[:, None]
            norm[s:s + stylize.WINDOW] += fade[:, None]
    target = total[stylize.HOP:stylize.HOP + steps] / np.maximum(
        norm[stylize.HOP:stylize.HOP + steps], 1e-6)
    return encoding.decode_velocities(target, notes, perf.ticks_per_beat)


def gappy_file(path, seed=0, ticks_per_beat=96):
    """Phrases separated by silences of every length (some shorter than a window, some far
    longer), notes held across the gaps, chords, two tracks."""
    rng = np.random.default_rng(seed)
    step = ticks_per_beat // 4
    right, left, now = [], [], 0
    for gap in (0, 37, 150, 250, 999, 5000, 123, 40_000, 310):
        now += gap * step
        for i in range(int(rng.integers(3, 40))):
            start = now + i * step * int(rng.integers(1, 3))
            right.append((start, start + step * int(rng.integers(1, 6)), int(rng.integers(40, 90)),
                          int(rng.integers(20, 120))))
        now = right[-1][1]
        left.append((now - 4 * step, now + 700 * step, int(rng.integers(30, 50)), 70))  # held on
    midi_file(notes_track(right), notes_track(left, channel=1),
              ticks_per_beat=ticks_per_beat).save(path)
    return path


def test_cutting_silences_changes_no_velocity(tmp_path, stylizer):
    for seed in range(3):
        path = gappy_file(str(tmp_path / f"gappy{seed}.mid"), seed)
        perf = midi.load_performance(path)
        result = stylize.perform_file(path, path + ".out.mid", stylizer=stylizer,
                                      blend={"classical": 0.3, "jazz": 0.7})
        np.testing.assert_array_equal(result.velocities,
                                      dense_velocities(stylizer, perf,
                                                       {"classical": 0.3, "jazz": 0.7}))
        notes = perf.notes.select(encoding.in_piano_range(perf.notes))
        onset, end = stylize.performed_grid(notes, perf.ticks_per_beat)
        assert end.max() < encoding.grid_steps(notes, perf.ticks_per_beat) / 10


def test_silent_windows_are_not_run(stylizer):
    """Sounding cells get what running every window gives them; silent steps that only silent
    windows cover are 0, and those windows cost nothing."""
    steps = 30 * stylize.HOP
    inputs = np.zeros((steps, 176), np.uint8)
    rng = np.random.default_rng(1)
    for lo in (0, 1000, 2950):
        on = rng.random((40, 88)) < 0.1
        inputs[lo:lo + 40, 0::2], inputs[lo:lo + 40, 1::2] = on, on
    calls = []
    predict, params = stylizer._predictor((1,))
    stylizer._predict[(1,)] = (lambda p, b, w: calls.append(1) or predict(p, b, w), params)
    try:
        got = stylizer.predict(inputs, {"jazz": 1.0})
    finally:
        stylizer._predict[(1,)] = (predict, params)
    assert len(calls) == 1  # 6 windows that sound, not 31: one call of ROWS
    sounding = inputs[:, 1::2].astype(bool)
    np.testing.assert_allclose(got[sounding], every_window(predict, params, inputs)[sounding],
                               atol=1e-6)
    assert (got[1300:2700] == 0).all()


def test_notes_hours_apart_cost_their_notes_not_the_silence(tmp_path, stylizer):
    """The fuzz findings: a legal maximum delta (0x0FFFFFFF ticks) at 1 tick per beat wanted
    88 GiB, at 96 ticks 3.67 GiB, at 960 it hung; two notes ten hours apart took 25-54 s."""
    ten_hours = 10 * 3600 * 2 * 960  # ticks at 120 bpm, 960 per beat
    cases = {"max_delta_1": (smf(note_events([(0, 60, 80, 1), (0x0FFFFFFF, 62, 90, 1)])
                                 + END_OF_TRACK, division=1), 1),
             "max_delta_96": (smf(note_events([(0, 60, 80, 10), (0x0FFFFFFF, 62, 90, 10)] * 3)
                                  + END_OF_TRACK, division=96), 96),
             "ten_hours": (smf(note_events([(0, 60, 80, 480), (ten_hours, 62, 90, 480)])
                               + END_OF_TRACK, division=960), 960)}
    for name, (data, _) in cases.items():
        path = tmp_path / f"{name}.mid"
        path.write_bytes(data)
        began = time.perf_counter()
        result = stylize.perform_file(str(path), str(tmp_path / f"{name}.out.mid"),
                                      stylizer=stylizer, blend={"jazz": 1.0})
        assert time.perf_counter() - began < 10 and result.notes in (2, 6), name
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak < 3_000_000  # KB: nowhere near the gigabytes of a whole grid


def test_files_longer_than_the_bound_are_refused_in_every_mode(tmp_path, stylizer):
    """Onsets every 300 sixteenths for 131,100 steps: no silence to cut, over MAX_STEPS."""
    notes = [(0 if i == 0 else 299, 60 + i % 12, 80, 1) for i in range(438)]
    path = tmp_path / "long.mid"
    path.write_bytes(smf(note_events(notes) + END_OF_TRACK, division=4))
    for options in ({"stylizer": stylizer, "blend": {"jazz": 1.0}}, {"baseline": "random"}):
        with pytest.raises(stylize.StylizeError, match=r"too long: 131,\d+ steps \(silences left "
                           r"out\) of a sixteenth \(the limit is 131,072"):
            stylize.perform_file(str(path), str(tmp_path / "out.mid"), **options)
    assert not (tmp_path / "out.mid").exists()


# ----------------------------------------------------------------------------- checkpoints and flags


def broken_exports(tmp_path, model_path):
    """{name: (path, expected words)}: every kind of bad --checkpoint the fuzzing found."""
    with np.load(model_path) as z:
        good = {k: z[k] for k in z.files}
    meta = json.loads(str(good["__meta__"]))
    raw = open(model_path, "rb").read()
    cases = {}

    def save(name, members=None, data=None):
        path = str(tmp_path / f"{name}.npz")
        if data is not None:
            open(path, "wb").write(data)
        else:
            np.savez(path, **members)
        return path

    def with_meta(**changes):
        return {**good, "__meta__": np.array(json.dumps({**meta, **changes}))}

    first = next(k for k in good if k != "__meta__")
    cases["empty"] = (save("empty", data=b""), "not a stylenet-jax inference export")
    cases["truncated"] = (save("truncated", data=raw[:len(raw) // 2]), "not a stylenet-jax")
    crc = bytearray(raw)
    crc[raw.index(b"NUMPY") + 200] ^= 0xFF  # a byte of the first member's array data
    cases["bad_crc"] = (save("bad_crc", data=bytes(crc)), "not a stylenet-jax")
    cases["meta_list"] = (save("meta_list", {**good, "__meta__": np.array("[1, 2]")}),
                          "not a stylenet-jax-inference file")
    cases["meta_number"] = (save("meta_number", {**good, "__meta__": np.array(3.5)}),
                            "not a stylenet-jax-inference file")
    cases["config_list"] = (save("config_list", with_meta(model_config=[1, 2])),
                            "bad model config")
    cases["config_type"] = (save("config_type", with_meta(model_config={
        **meta["model_config"], "hidden_size": 16.5})), "does not build a model")
    cases["huge_layers"] = (save("huge_layers", with_meta(model_config={
        **meta["model_config"], "num_layers": 10 ** 9})), "cannot make 1000000000 layers")
    cases["styles"] = (save("styles", with_meta(styles=["a", "a"])), "bad styles")
    cases["missing"] = (save("missing", {k: v for k, v in good.items() if k != first}),
                        f"missing parameters for its model config: {first}")
    cases["extra"] = (save("extra", {**good, "heads/extra": np.zeros(3)}),
                      "unexpected parameters for its model config: heads/extra")
    cases["shape"] = (save("shape", {**good, first: np.zeros((2, 2), np.float16)}),
                      f"parameters of the wrong shape for its model config: {first} (2, 2)")
    nan = good[first].copy()
    nan.flat[0] = np.nan
    cases["nan"] = (save("nan", {**good, first: nan}), f"non-finite values (NaN or inf) in {first}")
    cases["inputs"] = (save("inputs", with_meta(model_config={**meta["model_config"],
                                                              "input_size": 100})), "wrong shape")
    return cases


def test_bad_checkpoints_are_one_line_errors(tmp_path, model_path):
    for name, (path, expected) in broken_exports(tmp_path, model_path).items():
        with pytest.raises(stylize.StylizeError) as err:
            stylize.Stylizer(path)
        message = str(err.value)
        assert expected in message and path in message and "\n" not in message, (name, message)


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
    assert len(midi.parse_midi(piped.stdout)[0].tracks) == 4  # the MIDI bytes alone
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
    (src / "sub" / "fmt3.kar").write_bytes(smf(note_events([(0, 60, 80, 96)]) + END_OF_TRACK,
                                               fmt=3))
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
