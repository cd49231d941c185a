"""What the performer and stylize tests share: a tiny exported model, MIDI files to perform,
broken exports, the shipped model's recorded velocities, and the check that only piano
velocities changed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import mido
import numpy as np

from midi_factory import midi_file, notes_track, tempo, time_signature, track
from stylenet_jax import checkpoints, encoding, midi
from stylenet_jax.config import ModelConfig
from stylenet_jax.model import StyleNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLES = ["classical", "jazz"]
SHIPPED_REFERENCE = os.path.join(ROOT, "tests", "data", "minuet_shipped_velocities.json")


def cli(*args, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Runs ``python -m stylenet_jax.stylize ARGS`` from the repository root (text output)."""
    return subprocess.run([sys.executable, "-m", "stylenet_jax.stylize", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def export_tiny_model(path: str) -> str:
    """A small randomly initialised two-style model (STYLES), exported like the shipped one."""
    config = ModelConfig(num_styles=2, hidden_size=16, num_layers=2)
    params = StyleNet(config).init(jax.random.key(1), jnp.zeros((1, 4, 176)),
                                   jnp.ones((1,), jnp.int32), train=False)["params"]
    params = jax.tree.map(lambda a: a * 4, params)  # livelier outputs than the tiny init
    return checkpoints.export_inference(path, params, config, STYLES)


def rich_file(path, bars=16):
    """Format 1: conductor (tempo changes, meters), two piano tracks, drums, pedal, program."""
    conductor = track([tempo(96), time_signature(4, 4), tempo(132, 960 * 4),
                       time_signature(3, 4, 960 * 8),
                       (960 * 9, mido.MetaMessage("marker", text="B"))])
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


def assert_only_piano_velocities_changed(source, target):
    """Message by message: same everything except note-on velocities of piano notes; returns
    how many of those changed."""
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


def piano_velocities(path: str) -> list[int]:
    """The velocities of a file's piano notes (MIDI 21..108 outside channel 10), in order."""
    notes = midi.load_performance(path).notes
    return notes.select(encoding.in_piano_range(notes)).velocity.astype(int).tolist()


def file_sha256(path: str) -> str:
    """The hex sha256 of a file, ``path`` relative to the repository root."""
    with open(os.path.join(ROOT, path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def shipped_reference() -> dict:
    """The recorded velocities of the shipped model on the README example
    (tests/data/minuet_shipped_velocities.json), after checking that the model, its tree and
    the example are the files they were recorded with (tests/record_shipped_reference.py
    re-records it)."""
    with open(SHIPPED_REFERENCE, encoding="utf-8") as f:
        reference = json.load(f)
    for what in ("model", "tree", "input"):
        assert file_sha256(reference[what]) == reference[f"{what}_sha256"], (
            f"{reference[what]} is not the file the reference velocities were recorded with; "
            f"if it changed on purpose, re-record {SHIPPED_REFERENCE} "
            "(python3 tests/record_shipped_reference.py)")
    velocities = reference["velocities"]
    original = piano_velocities(os.path.join(ROOT, reference["input"]))
    for style, recorded in velocities.items():  # the reference is a real performance
        assert len(recorded) == len(original) and recorded != original, style
    assert len({tuple(v) for v in velocities.values()}) == len(velocities)
    return reference


def assert_plays_as_recorded(velocities, recorded, what: str = "") -> None:
    """``velocities`` are the recorded ones, up to rounding: every note within 1 and at most
    2 notes off at all. The shipped model's matmuls run in bfloat16, and CPUs with and without
    AMX round them differently, so a velocity that lands on a rounding boundary can move by
    one from machine to machine; a change to the code moves far more (a window, a blend, a
    cross-fade)."""
    got, want = np.asarray(velocities, np.int64), np.asarray(recorded, np.int64)
    assert got.shape == want.shape, what
    off = np.abs(got - want)
    assert off.max() <= 1 and (off > 0).sum() <= 2, (
        f"{what}: {(off > 0).sum()} of {len(want)} notes differ from the recording, by up to "
        f"{off.max()}: first at note {int(np.argmax(off > 0))}")


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
