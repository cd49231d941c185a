"""Fuzzing the performer (stylize's library) with malformed MIDI files: no crash, no hang,
nothing written for a refusal.

Every generated file goes through ``performer.perform_file`` (the library path of the command)
with a tiny random model. What must hold for each file:

- it is either performed or refused with ``smf.MidiError`` / ``performer.StylizeError``, whose
  message is one line naming the file; any other exception fails the test;
- a refused file writes nothing; a performed one is written, reads back, and has the same
  notes (pitch, channel, start, end) with the new velocities on the notes chosen
  (``note_selection``) and the others' velocities as they were;
- the input's bytes are unchanged;
- each file takes at most ``SECONDS_PER_FILE``, and the process's peak memory does not grow
  by more than ``PEAK_GROWTH_KB`` over the campaign (costs follow the notes, not the ticks).

Files are made from a seed: random songs written by mido, hand-built raw events (running
status, huge and over-long delta times, metas and sysex of every length, realtime bytes,
end-of-track games, unknown chunks, header fields), and byte-level mutations of both
(byte flips, truncations, chunk-length lies), plus the fuzz campaign's reproducers as byte
strings. One command-line run in folder mode checks that bad files before good ones are
each reported on one line and the good ones all performed. The default campaign is 1,200
files (about 10 s); ``--runslow`` adds 12,000 more.
"""

import hashlib
import io
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

from midi_factory import END_OF_TRACK, chunk, note_events, smf_bytes, vlq
from stylenet_jax import checkpoints, encoding, midi, performer, smf
from stylenet_jax.config import ModelConfig
from stylenet_jax.model import StyleNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS_PER_FILE = 10.0  # generous: the CI machine is shared; typical files take ~0.05 s
PEAK_GROWTH_KB = 1_500_000
ONE_LINE_ERRORS = (smf.MidiError, performer.StylizeError)


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    """A tiny randomly initialised two-style model (fast: the campaign is about the files)."""
    config = ModelConfig(num_styles=2, hidden_size=8, num_layers=1)
    params = StyleNet(config).init(jax.random.key(3), jnp.zeros((1, 4, 176)),
                                   jnp.ones((1,), jnp.int32), train=False)["params"]
    path = str(tmp_path_factory.mktemp("fuzz_model") / "model.npz")
    model = performer.Stylizer(checkpoints.export_inference(path, params, config, ["a", "b"]))
    inputs = np.zeros((10, 176), np.uint8)
    inputs[:, 1] = 1
    model.predict(inputs, {"a": 0.5, "b": 0.5})  # compile once, outside the time bounds
    return model


# ----------------------------------------------------------------------------- generators


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def random_song(rng) -> bytes:
    """A random but well-formed file written by mido: notes on every channel (drums too),
    controllers, tempo and meter changes, texts, key signatures, sysex, unknown metas."""
    tpb = int(_pick(rng, [1, 2, 3, 7, 24, 96, 480, 960, 0x7FFF]))
    tracks = []
    for _ in range(int(rng.integers(1, 4))):
        track, held = mido.MidiTrack(), []
        for _ in range(int(rng.integers(0, 50))):
            delta = int(_pick(rng, [0, 0, 1, int(rng.integers(0, 4 * tpb + 1)),
                                    int(rng.integers(0, 2 ** 16)), 0x0FFFFFFF if rng.random()
                                    < 0.02 else 0]))
            kind = rng.random()
            channel = int(_pick(rng, [0, 0, 1, 9, 15]))
            if kind < 0.45:
                pitch = int(rng.integers(0, 128) if rng.random() < 0.1 else rng.integers(21, 109))
                msg = mido.Message("note_on", channel=channel, note=pitch,
                                   velocity=int(rng.integers(0, 128)))
                held.append((channel, pitch))
            elif kind < 0.7 and held:
                channel, pitch = held.pop(int(rng.integers(len(held))))
                msg = mido.Message("note_off", channel=channel, note=pitch,
                                   velocity=int(rng.integers(0, 128)))
            elif kind < 0.8:
                msg = _pick(rng, [
                    mido.Message("control_change", channel=channel, control=64,
                                 value=int(rng.integers(0, 128))),
                    mido.Message("program_change", channel=channel,
                                 program=int(rng.integers(0, 128))),
                    mido.Message("pitchwheel", channel=channel,
                                 pitch=int(rng.integers(-8192, 8192))),
                    mido.Message("aftertouch", channel=channel, value=int(rng.integers(0, 128))),
                    mido.Message("polytouch", channel=channel, note=60, value=1)])
            else:
                msg = _pick(rng, [
                    mido.MetaMessage("set_tempo", tempo=int(rng.integers(1, 0xFFFFFF))),
                    mido.MetaMessage("time_signature", numerator=int(rng.integers(1, 16)),
                                     denominator=int(2 ** rng.integers(0, 6))),
                    mido.MetaMessage("key_signature", key=_pick(rng, ["C", "F#m", "Bb"])),
                    mido.MetaMessage("text", text="".join(chr(int(c)) for c in
                                                          rng.integers(32, 256, 5))),
                    mido.MetaMessage("marker", text="B"),
                    mido.Message("sysex", data=[int(b) for b in rng.integers(0, 128, 4)]),
                    mido.UnknownMetaMessage(0x60, data=[1, 2, 3])])
            track.append(msg.copy(time=delta))
        tracks.append(track)
    song = mido.MidiFile(type=0 if len(tracks) == 1 else 1, ticks_per_beat=tpb)
    song.tracks = tracks
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def raw_track(rng) -> bytes:
    """Hand-built event bytes no writer would make: running status anywhere, delta times of
    1 to 10 bytes, metas and sysex whose lengths lie, realtime and undefined status bytes,
    end of track in the middle or missing, notes never closed before a late event. Each
    hostile event is rare enough that many tracks hold none and get performed."""
    out, running = b"", False  # running: a channel status is in force
    for _ in range(int(rng.integers(0, 40))):
        delta = (int(rng.integers(0, 300)) if rng.random() < 0.97 else
                 _pick(rng, [0x0FFFFFFF, 0x0FFFFFFF, 2 ** 28, 2 ** 35, 2 ** 63]))
        event = rng.random()
        if event < 0.55:
            omit = rng.random() < (0.4 if running else 0.02)  # running status, rarely orphan
            status = b"" if omit else bytes([0x90 | int(rng.integers(0, 16))])
            out += vlq(delta) + status + bytes([int(rng.integers(21, 109)),
                                                int(rng.integers(0, 128))])
            running = True
        elif event < 0.65:
            status = int(_pick(rng, [0x80, 0xA0, 0xB0, 0xE0, 0xC0, 0xD0]))
            out += vlq(delta) + bytes([status | int(rng.integers(0, 16))]) + bytes(
                int(rng.integers(0, 128)) for _ in range(1 if status >= 0xC0 and status < 0xE0
                                                         else 2))
            running = True
        elif event < 0.8:
            kind = int(_pick(rng, [0x00, 0x01, 0x03, 0x20, 0x21, 0x2F, 0x51, 0x54, 0x58, 0x59,
                                   0x7F, int(rng.integers(0, 256))]))
            data = bytes(int(b) for b in rng.integers(0, 256, int(rng.integers(0, 8))))
            length = len(data) if rng.random() < 0.95 else int(rng.integers(0, 2 ** 21))
            out += vlq(delta) + bytes([0xFF, kind]) + vlq(length) + data
        elif event < 0.88:
            data = bytes(int(b) for b in rng.integers(0, 128 if rng.random() < 0.95 else 256,
                                                      int(rng.integers(0, 6))))
            out += vlq(delta) + bytes([int(_pick(rng, [0xF0, 0xF7]))]) + vlq(len(data) + 1) \
                + data + b"\xf7"
            running = False
        elif event < 0.9:
            status = int(_pick(rng, [0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF8, 0xF9, 0xFA, 0xFB,
                                     0xFC, 0xFD, 0xFE]))
            size = {0xF1: 1, 0xF2: 2, 0xF3: 1}.get(status, 0)
            out += vlq(delta) + bytes([status]) + bytes(int(b) for b in rng.integers(0, 128, size))
            running = False
        else:
            out += vlq(delta) + b"\xff\x2f\x00"  # end of track, and maybe more after it
    return out + (END_OF_TRACK if rng.random() < 0.7 else b"")


def raw_file(rng) -> bytes:
    """Raw tracks in a header of random fields, unknown chunks before and between them."""
    parts = []
    for _ in range(int(rng.integers(0, 4))):
        if rng.random() < 0.15:
            parts.append(chunk(_pick(rng, [b"XFIH", b"ALIE", b"\x00\x01\x02\x03"]),
                               bytes(int(rng.integers(0, 4)))))
        parts.append(raw_track(rng))
    fmt = int(_pick(rng, [0, 1, 1, 1, 2, 3, 7, 0x7FFF, 0x8000, 0xFFFF]))
    division = int(_pick(rng, [1, 96, 480, 960, 0x7FFF, 1, 96, 480, 0, 0xE728]))
    count = None if rng.random() < 0.8 else int(_pick(rng, [0, 1, 5, 0xFFFF]))
    return smf_bytes(*parts, fmt=fmt, division=division, count=count,
                     header_extra=b"\x00" * int(_pick(rng, [0, 0, 0, 2])))


def mutate(rng, data: bytes) -> bytes:
    """Byte flips, a truncation, a chunk-length lie, or a header field changed."""
    data = bytearray(data)
    how = rng.random()
    if how < 0.35 and data:
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
    elif how < 0.55:
        data = data[:int(rng.integers(0, len(data) + 1))]
    elif how < 0.8:
        starts = [i for i in range(len(data) - 8) if data[i:i + 4] == b"MTrk"]
        if starts:
            at = _pick(rng, starts) + 4
            size = int.from_bytes(data[at:at + 4], "big")
            lie = int(_pick(rng, [0, 1, size - 1, size + 1, size + 100, 0xFFFFFFFF,
                                  int(rng.integers(0, 2 ** 32))])) % 2 ** 32
            data[at:at + 4] = lie.to_bytes(4, "big")
    elif len(data) >= 14:
        field = int(_pick(rng, [8, 10, 12]))
        data[field:field + 2] = int(_pick(rng, [0, 1, 2, 3, 0x7FFF, 0x8000, 0xFFFF,
                                                int(rng.integers(0, 2 ** 16))])).to_bytes(2, "big")
    return bytes(data)


def campaign(seed: int, count: int) -> list[tuple[str, bytes]]:
    """``count`` (name, bytes) files of every kind, in a mixed order fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    files = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            name, data = "song", random_song(rng)
        elif kind == 1:
            name, data = "raw", raw_file(rng)
        elif kind == 2:
            name, data = "song_mutated", mutate(rng, random_song(rng))
        elif kind == 3:
            name, data = "raw_mutated", mutate(rng, raw_file(rng))
        else:
            name, data = "raw_track", smf_bytes(raw_track(rng),
                                                division=int(_pick(rng, [1, 96, 960])))
        files.append((f"{i:05d}_{name}.mid", data))
    return files


TEN_HOURS = 10 * 3600 * 2 * 960  # ticks at 120 bpm and 960 per beat
NOTES = note_events([(0, 60, 80, 240), (0, 64, 70, 240)]) + END_OF_TRACK

# The fuzz campaign's findings, as byte strings: (name, bytes, performed?, words expected in
# the refusal or in the warnings).
REPRODUCERS = [
    ("format_3", smf_bytes(NOTES, fmt=3), True, "unknown MIDI format 3"),
    ("format_7", smf_bytes(NOTES, fmt=7), True, "unknown MIDI format 7"),
    ("format_7fff", smf_bytes(NOTES, fmt=0x7FFF), True, "unknown MIDI format 32767"),
    ("format_8000", smf_bytes(NOTES, fmt=0x8000), True, "unknown MIDI format 32768"),
    ("format_0_two_tracks", smf_bytes(NOTES, NOTES, fmt=0), True, "format 0 with 2 tracks"),
    ("key_signature_8_sharps", smf_bytes(b"\x00\xff\x59\x02\x08\x00" + NOTES), True, ""),
    *[(f"realtime_{b:02x}", smf_bytes(b"\x00" + bytes([b]) + NOTES), False,
       f"realtime message 0x{b:02X}") for b in (0xF8, 0xFA, 0xFB, 0xFC, 0xFE)],
    ("delta_2_63", smf_bytes(vlq(2 ** 63) + NOTES[1:]), False, "delta time longer than 4 bytes"),
    ("max_delta_tpb_1", smf_bytes(note_events([(0, 60, 80, 1), (0x0FFFFFFF, 62, 90, 1)])
                                  + END_OF_TRACK, division=1), True, ""),
    ("max_delta_tpb_96", smf_bytes(note_events([(0, 60, 80, 9), (0x0FFFFFFF, 62, 90, 9)])
                                   + END_OF_TRACK, division=96), True, ""),
    ("max_delta_tpb_960", smf_bytes(note_events([(0x0FFFFFFF, 60, 80, 9)] * 4) + END_OF_TRACK,
                                    division=960), True, ""),
    ("ten_hours_apart", smf_bytes(note_events([(0, 60, 80, 480), (TEN_HOURS, 62, 90, 480)])
                                  + END_OF_TRACK, division=960), True, ""),
    ("held_to_a_late_event", smf_bytes(b"".join(vlq(5) + bytes([0x90 | c, p, 90])
                                                for c in range(15) for p in range(21, 109, 3))
                                       + vlq(0x0FFFFFFF) + b"\xb0\x40\x00" + END_OF_TRACK,
                                       division=1), True, ""),
    ("unknown_chunk_first", smf_bytes(chunk(b"XFIH", b"\x01\x02"), chunk(b"MTrk", NOTES)), True,
     ""),
    ("text_5_bytes", b"hello", False, "not a MIDI file"),
    ("empty", b"", False, "empty file"),
]


# ----------------------------------------------------------------------------- checks


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def perform_and_check(stylizer, source: str, target: str) -> tuple[bool, str, float]:
    """Runs one file through the performer (stylize's library path) and checks every promise;
    returns (performed, refusal message or warnings, seconds)."""
    before = _sha(source)
    began = time.perf_counter()
    try:
        result = performer.perform_file(source, target, stylizer=stylizer,
                                        blend={"a": 0.5, "b": 0.5})
    except ONE_LINE_ERRORS as e:
        seconds = time.perf_counter() - began
        message = str(e)
        assert "\n" not in message and message.startswith(smf.shown(source)), message
        assert not os.path.lexists(target), f"{source}: refused but {target} was written"
        performed, words = False, message
    else:
        seconds = time.perf_counter() - began
        original, written = midi.load_performance(source), midi.load_performance(target)
        for field in ("pitch", "channel", "start", "end"):
            np.testing.assert_array_equal(getattr(original.notes, field),
                                          getattr(written.notes, field), err_msg=source)
        piano = encoding.in_piano_range(written.notes)
        performed = result.performed  # the chosen notes change; the others are as they were
        np.testing.assert_array_equal(written.notes.velocity[piano][performed],
                                      result.velocities, err_msg=source)
        np.testing.assert_array_equal(written.notes.velocity[piano][~performed],
                                      original.notes.velocity[piano][~performed], err_msg=source)
        performed, words = True, " ".join(result.warnings)
        os.unlink(target)
    assert _sha(source) == before, f"{source} was modified"
    assert seconds < SECONDS_PER_FILE, f"{source} took {seconds:.1f} s"
    return performed, words, seconds


def run_campaign(stylizer, folder, files):
    """Checks every file; returns (performed count, refused count, slowest seconds)."""
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    performed = slowest = 0
    out = folder / "out"
    out.mkdir()
    for name, data in files:
        source = folder / name
        source.write_bytes(data)
        try:
            done, _, seconds = perform_and_check(stylizer, str(source), str(out / name))
        except Exception as e:  # keep the file that broke it, and say how to get it again
            raise AssertionError(f"{name} (kept at {source}; first bytes "
                                 f"{data[:64].hex()}): {type(e).__name__}: {e}") from e
        performed += done
        slowest = max(slowest, seconds)
        source.unlink()
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert growth < PEAK_GROWTH_KB, f"peak memory grew by {growth} KB"
    assert os.listdir(out) == []
    return performed, len(files) - performed, slowest


def test_reproducers_are_performed_or_refused_as_decided(tmp_path, stylizer):
    for name, data, should_perform, words in REPRODUCERS:
        source = tmp_path / f"{name}.mid"
        source.write_bytes(data)
        performed, said, _ = perform_and_check(stylizer, str(source), str(tmp_path / "out.mid"))
        assert performed == should_perform and words in said, (name, said)


def test_a_seeded_campaign_of_1200_files(tmp_path, stylizer):
    began = time.perf_counter()
    performed, refused, slowest = run_campaign(stylizer, tmp_path, campaign(seed=0, count=1200))
    # Both outcomes are well represented, or the generators have drifted.
    assert performed > 250 and refused > 250, (performed, refused)
    print(f"fuzz: 1200 files, {performed} performed, {refused} refused, slowest {slowest:.2f} s, "
          f"{time.perf_counter() - began:.1f} s in all")


@pytest.mark.slow
def test_a_long_campaign_of_thousands_of_files(tmp_path, stylizer):
    for seed in (1, 2, 3):
        folder = tmp_path / str(seed)
        folder.mkdir()
        performed, refused, _ = run_campaign(stylizer, folder, campaign(seed=seed, count=4000))
        assert performed > 1000 and refused > 1000


def test_folder_mode_reports_bad_files_on_one_line_each_and_performs_the_good_ones(
        tmp_path, stylizer):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    bad = {f"a_bad_{name}.mid": data for name, data, ok, _ in REPRODUCERS if not ok}
    rng = np.random.default_rng(7)
    bad["a_bad_truncated.mid"] = random_song(rng)[:30]
    bad["sub/a_bad_lie.mid"] = smf_bytes(chunk(b"MTrk", NOTES, length=5))
    good = {"b_good_format_3.mid": smf_bytes(NOTES, fmt=3), "b_good_plain.kar": smf_bytes(NOTES),
            "sub/b_good_hours.mid": REPRODUCERS[[r[0] for r in REPRODUCERS]
                                                .index("ten_hours_apart")][1]}
    for name, data in {**bad, **good}.items():
        (src / name).write_bytes(data)
    before = {name: _sha(src / name) for name in {**bad, **good}}
    model = str(tmp_path / "model.npz")
    checkpoints.export_inference(model, stylizer.params, stylizer.config, stylizer.styles)
    done = subprocess.run([sys.executable, "-m", "stylenet_jax.stylize", str(src), "-o", str(out),
                           "--style=a=0.5,b=0.5", f"--checkpoint={model}", "--cache_dir="],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert sorted(line.split(": ")[1] for line in errors) == sorted(
        str(src / name) for name in bad)
    for name in good:
        midi.load_performance(str(out / name))
    assert sorted(os.path.relpath(os.path.join(root, f), out) for root, _, files in os.walk(out)
                  for f in files) == sorted(good)
    assert f"performed {len(good)} of {len(good) + len(bad)} files" in done.stdout
    assert before == {name: _sha(src / name) for name in {**bad, **good}}
