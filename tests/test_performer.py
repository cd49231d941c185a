"""stylenet_jax.performer: the shipped model's velocities, windows and blends, silences and
length, baselines, bad checkpoints."""

import logging
import os
import re
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from midi_factory import END_OF_TRACK, note_events, smf_bytes
from performer_factory import (ROOT, STYLES, assert_only_piano_velocities_changed,
                               assert_plays_as_recorded, broken_exports, export_tiny_model,
                               gappy_file, piano_velocities, rich_file, shipped_reference)
from stylenet_jax import encoding, midi, model, performer, style_choice


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return export_tiny_model(str(tmp_path_factory.mktemp("model") / "model.npz"))


@pytest.fixture(scope="module")
def stylizer(model_path):
    return performer.Stylizer(model_path)


def test_the_shipped_model_writes_the_recorded_velocities(tmp_path):
    """Heads and blends of the shipped model give the velocities recorded with it, up to
    rounding (``assert_plays_as_recorded``; the CLI test checks --style jazz, the README
    command)."""
    reference = shipped_reference()
    shipped = performer.Stylizer()
    assert shipped.path == performer.DEFAULT_MODEL and shipped.styles == ["classical", "jazz",
                                                                          "pop"]
    source = os.path.join(ROOT, reference["input"])
    for spec, recorded in reference["velocities"].items():
        if spec == "jazz":
            continue  # tests/test_stylize.py runs the README command
        target = str(tmp_path / "out.mid")
        result = performer.perform_file(source, target, stylizer=shipped,
                                        blend=style_choice.parse_blend(spec, shipped.styles))
        assert piano_velocities(target) == result.velocities.tolist(), spec
        assert_plays_as_recorded(result.velocities, recorded, spec)


def test_windows_run_the_one_forward_of_the_selected_heads(stylizer):
    """predict_windows is model.predict of model.select_heads, weighted by the blend."""
    rng = np.random.default_rng(2)
    windows = (rng.random((performer.ROWS, performer.WINDOW, 176)) < 0.05).astype(np.uint8)
    lengths = np.full((performer.ROWS,), performer.WINDOW, np.int32)
    jazz = model.predict(model.select_heads(stylizer.params, np.array([1])), windows, lengths,
                         config=model.head_config(stylizer.config, 1))
    np.testing.assert_array_equal(stylizer.predict_windows(windows, {"jazz": 1.0}),
                                  np.asarray(jazz)[0])
    both = model.select_heads(stylizer.params, np.array([0, 1]))
    heads = np.asarray(model.predict(both, windows, lengths,
                                     config=model.head_config(stylizer.config, 2)))
    assert heads.shape == (2, performer.ROWS, performer.WINDOW, 88)
    np.testing.assert_allclose(heads[1], jazz[0], atol=1e-6)
    mixed = stylizer.predict_windows(windows, {"classical": 0.25, "jazz": 0.75})
    assert mixed.shape == heads.shape[1:] and mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, 0.25 * heads[0] + 0.75 * heads[1], atol=1e-6)


def test_generated_file_changes_only_piano_velocities(tmp_path, stylizer):
    source = rich_file(str(tmp_path / "in.mid"))
    result = performer.perform_file(source, str(tmp_path / "out.mid"), stylizer=stylizer,
                                    blend={"jazz": 1.0})
    assert result.notes == 16 * 16 + 16 * 4
    assert assert_only_piano_velocities_changed(source, str(tmp_path / "out.mid")) == result.changed
    assert result.changed > 0 and len(np.unique(result.velocities)) > 5
    assert "notes changed, velocity min" in performer.describe("out.mid", result, "style jazz")


def test_corpus_files_change_only_piano_velocities(corpus_dir, tmp_path, stylizer):
    for path in sorted(corpus_dir.glob("*/*.mid"))[::120]:
        out = str(tmp_path / path.name)
        performer.perform_file(str(path), out, stylizer=stylizer, blend={"classical": 1.0})
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


def predict_compiles(run) -> int:
    """How many times ``run()`` compiles ``model.predict``, read from JAX's public compile
    log (``jax.log_compiles``: one "Compiling jit(predict) ..." record per compile)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            run()
    finally:
        logger.removeHandler(handler)
    return sum(bool(re.match(r"Compiling (jit\()?predict\b", r.getMessage())) for r in records)


def test_one_compile_serves_files_of_any_length(model_path, tmp_path):
    fresh = performer.Stylizer(model_path)
    model.predict.clear_cache()  # forget what earlier tests compiled: the first file compiles
    compiles = []
    for bars in (2, 40, 130):  # one window, several, more than one call's ROWS
        path = rich_file(str(tmp_path / f"{bars}.mid"), bars=bars)
        compiles.append(predict_compiles(lambda: performer.perform_file(
            path, path + ".out.mid", stylizer=fresh, blend={"jazz": 1.0})))
    assert compiles == [1, 0, 0]


def test_parse_blend_checks_names_and_weights():
    assert style_choice.parse_blend("jazz", STYLES) == {"jazz": 1.0}
    assert style_choice.parse_blend("classical=0.25, jazz=0.75", STYLES) == {"classical": 0.25,
                                                                          "jazz": 0.75}
    for bad, message in [("rock", "unknown style 'rock'"), ("jazz=0.5", "sum to 1"),
                         ("jazz=x", "not a number"), ("jazz=1.5,classical=-0.5", "negative"),
                         ("", "empty")]:
        with pytest.raises(style_choice.StylizeError, match=message):
            style_choice.parse_blend(bad, STYLES)


def every_window(stylizer, inputs):
    """The reference prediction of head jazz: every window, one per call, from -HOP every HOP
    steps, overlap-added with the cross-fade weights; float64 (T, 88)."""
    steps = len(inputs)
    fade = performer.window_weights()
    total, norm = np.zeros((steps, 88)), np.zeros((steps, 1))
    for start in range(-performer.HOP, steps, performer.HOP):
        window = np.zeros((performer.ROWS, performer.WINDOW, 176), np.uint8)
        lo, hi = max(start, 0), min(start + performer.WINDOW, steps)
        window[0, lo - start:hi - start] = inputs[lo:hi]
        out = stylizer.predict_windows(window, {"jazz": 1.0})[0]
        total[lo:hi] += out[lo - start:hi - start] * fade[lo - start:hi - start, None]
        norm[lo:hi] += fade[lo - start:hi - start, None]
    return total / norm


def test_windows_cross_fade_to_the_overlap_add_of_single_windows(stylizer):
    rng = np.random.default_rng(0)
    steps = performer.ROWS * performer.HOP + 137  # more windows than one call's ROWS
    inputs = np.zeros((steps, 176), np.uint8)
    on = rng.random((steps, 88)) < 0.05
    encoding.onset_channels(inputs)[:] = on
    encoding.held_channels(inputs)[:] = on
    got = stylizer.predict(inputs, {"jazz": 1.0})
    np.testing.assert_allclose(got, every_window(stylizer, inputs), atol=1e-5)
    fade = performer.window_weights()
    # every step but the first and last HOP is covered by two windows whose weights sum to 1
    assert np.allclose(fade[:performer.HOP] + fade[performer.HOP:], 1.0)
    assert np.abs(np.diff(fade)).max() <= 1.0 / performer.HOP + 1e-6


def test_baselines_are_seeded(tmp_path):
    source = rich_file(str(tmp_path / "in.mid"))
    r1 = performer.perform_file(source, str(tmp_path / "r1.mid"), baseline="random", seed=3)
    r2 = performer.perform_file(source, str(tmp_path / "r2.mid"), baseline="random", seed=3)
    r3 = performer.perform_file(source, str(tmp_path / "r3.mid"), baseline="random", seed=4)
    assert (r1.velocities == r2.velocities).all() and (r1.velocities != r3.velocities).any()
    assert r1.velocities.min() >= 1 and r1.velocities.max() <= 127
    c = performer.perform_file(source, str(tmp_path / "c.mid"), baseline="constant", velocity=80)
    assert set(c.velocities.tolist()) == {80}
    assert assert_only_piano_velocities_changed(source, str(tmp_path / "c.mid")) == c.changed
    with pytest.raises(style_choice.StylizeError, match="--velocity must be in 1..127"):
        style_choice.baseline_velocities("constant", 3, velocity=0)
    with pytest.raises(style_choice.StylizeError, match="--baseline must be one of"):
        style_choice.baseline_velocities("loud", 3)


@pytest.mark.slow
def test_an_hour_of_notes_completes_with_bounded_memory(tmp_path, model_path):
    """Peak memory for an hour-long file stays within 300 MB of a 30-second file's."""
    def peak_kb(bars):
        path = rich_file(str(tmp_path / f"{bars}.mid"), bars=bars)
        code = ("import resource,sys; from stylenet_jax import performer as p; "
                f"st=p.Stylizer({model_path!r}); "
                f"r=p.perform_file({path!r}, {path!r}+'.out.mid', stylizer=st, "
                "blend={'jazz':1.0}); "
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
    window, hop = performer.WINDOW, performer.HOP
    padded = np.zeros((steps + 2 * window, 176), np.uint8)
    padded[hop:hop + steps] = enc.inputs
    total = np.zeros((len(padded), 88), np.float32)
    norm = np.zeros((len(padded), 1), np.float32)
    fade = performer.window_weights()
    starts = list(range(0, steps + hop, hop))
    for first in range(0, len(starts), performer.ROWS):
        rows = starts[first:first + performer.ROWS]
        batch = np.zeros((performer.ROWS, window, 176), np.uint8)
        for r, s in enumerate(rows):
            batch[r] = padded[s:s + window]
        out = stylizer.predict_windows(batch, blend)
        for r, s in enumerate(rows):
            total[s:s + window] += out[r] * fade[:, None]
            norm[s:s + window] += fade[:, None]
    target = total[hop:hop + steps] / np.maximum(norm[hop:hop + steps], 1e-6)
    return encoding.decode_velocities(target, notes, perf.ticks_per_beat)


def test_cutting_silences_changes_no_velocity(tmp_path, stylizer):
    for seed in range(3):
        path = gappy_file(str(tmp_path / f"gappy{seed}.mid"), seed)
        perf = midi.load_performance(path)
        result = performer.perform_file(path, path + ".out.mid", stylizer=stylizer,
                                        blend={"classical": 0.3, "jazz": 0.7})
        np.testing.assert_array_equal(result.velocities,
                                      dense_velocities(stylizer, perf,
                                                       {"classical": 0.3, "jazz": 0.7}))
        notes = perf.notes.select(encoding.in_piano_range(perf.notes))
        onset, end = performer.performed_grid(notes, perf.ticks_per_beat)
        assert end.max() < encoding.grid_steps(notes, perf.ticks_per_beat) / 10


def test_silent_windows_are_not_run(stylizer, monkeypatch):
    """Sounding cells get what running every window gives them; silent steps that only silent
    windows cover are 0, and those windows cost nothing."""
    steps = 30 * performer.HOP
    inputs = np.zeros((steps, 176), np.uint8)
    rng = np.random.default_rng(1)
    for lo in (0, 1000, 2950):
        on = rng.random((40, 88)) < 0.1
        encoding.onset_channels(inputs)[lo:lo + 40] = on
        encoding.held_channels(inputs)[lo:lo + 40] = on
    calls = []
    run_windows = stylizer.predict_windows
    monkeypatch.setattr(stylizer, "predict_windows",
                        lambda windows, blend, *rest: calls.append(1) or run_windows(
                            windows, blend, *rest))
    got = stylizer.predict(inputs, {"jazz": 1.0})
    monkeypatch.undo()
    assert len(calls) == 1  # 6 windows that sound, not 31: one call of ROWS
    sounding = encoding.held_channels(inputs).astype(bool)
    np.testing.assert_allclose(got[sounding], every_window(stylizer, inputs)[sounding],
                               atol=1e-6)
    assert (got[1300:2700] == 0).all()


def test_notes_hours_apart_cost_their_notes_not_the_silence(tmp_path, stylizer):
    """The fuzz findings: a legal maximum delta (0x0FFFFFFF ticks) at 1 tick per beat wanted
    88 GiB, at 96 ticks 3.67 GiB, at 960 it hung; two notes ten hours apart took 25-54 s."""
    ten_hours = 10 * 3600 * 2 * 960  # ticks at 120 bpm, 960 per beat
    cases = {"max_delta_1": (smf_bytes(note_events([(0, 60, 80, 1), (0x0FFFFFFF, 62, 90, 1)])
                                       + END_OF_TRACK, division=1), 1),
             "max_delta_96": (smf_bytes(note_events([(0, 60, 80, 10),
                                                     (0x0FFFFFFF, 62, 90, 10)] * 3)
                                        + END_OF_TRACK, division=96), 96),
             "ten_hours": (smf_bytes(note_events([(0, 60, 80, 480), (ten_hours, 62, 90, 480)])
                                     + END_OF_TRACK, division=960), 960)}
    for name, (data, _) in cases.items():
        path = tmp_path / f"{name}.mid"
        path.write_bytes(data)
        began = time.perf_counter()
        result = performer.perform_file(str(path), str(tmp_path / f"{name}.out.mid"),
                                        stylizer=stylizer, blend={"jazz": 1.0})
        assert time.perf_counter() - began < 10 and result.notes in (2, 6), name
    # The memory, in a fresh process: this one's high-water mark holds every earlier test's,
    # and getrusage's survives fork and exec, so the child reads its own address space's
    # peak (VmHWM, which a new program starts afresh).
    script = ("import re, sys\n"
              "from stylenet_jax import performer\n"
              "stylizer = performer.Stylizer(sys.argv[1])\n"
              "for path in sys.argv[2:]:\n"
              "    performer.perform_file(path, path + '.again.mid', stylizer=stylizer,\n"
              "                           blend={'jazz': 1.0})\n"
              "status = open('/proc/self/status').read()\n"
              "print(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1))\n")
    done = subprocess.run([sys.executable, "-c", script, stylizer.path,
                           *(str(tmp_path / f"{name}.mid") for name in cases)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    peak = int(done.stdout.split()[-1])
    assert peak < 3_000_000  # KB: nowhere near the gigabytes of a whole grid


def test_files_longer_than_the_bound_are_refused_in_every_mode(tmp_path, stylizer):
    """Onsets every 300 sixteenths for 131,100 steps: no silence to cut, over MAX_STEPS."""
    notes = [(0 if i == 0 else 299, 60 + i % 12, 80, 1) for i in range(438)]
    path = tmp_path / "long.mid"
    path.write_bytes(smf_bytes(note_events(notes) + END_OF_TRACK, division=4))
    for options in ({"stylizer": stylizer, "blend": {"jazz": 1.0}}, {"baseline": "random"}):
        with pytest.raises(performer.StylizeError, match=r"too long: 131,\d+ steps \(silences "
                           r"left out\) of a sixteenth \(the limit is 131,072"):
            performer.perform_file(str(path), str(tmp_path / "out.mid"), **options)
    assert not (tmp_path / "out.mid").exists()


# ----------------------------------------------------------------------------- checkpoints


def test_bad_checkpoints_are_one_line_errors(tmp_path, model_path):
    for name, (path, expected) in broken_exports(tmp_path, model_path).items():
        with pytest.raises(performer.StylizeError) as err:
            performer.Stylizer(path)
        message = str(err.value)
        assert expected in message and path in message and "\n" not in message, (name, message)
