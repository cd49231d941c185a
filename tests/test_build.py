"""data_prep.build: a dataset from a folder (filters and reasons, split, output format,
re-runs, hostile files, failed writes) and the command line."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from data_prep import build, synthetic
from midi_factory import (END_OF_TRACK, midi_file, note_events, notes_track, smf_bytes,
                          time_signature, vlq)
from stylenet_jax import dataset, encoding, midi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
quiet = lambda *_: None  # noqa: E731


@pytest.fixture
def corpus(tmp_path):
    """A generated corpus (classical, jazz: 10 songs each) plus files that must be rejected."""
    root = tmp_path / "midi"
    synthetic.write_synthetic_corpus(str(root), songs_per_style=10, steps=120, seed=1)
    rng = np.random.default_rng(0)
    waltz = [(i * 120, i * 120 + 100, 60 + i % 12, int(v)) for i, v in
             enumerate(rng.permutation(np.arange(30, 90)))]
    midi_file(notes_track(waltz, extra=[time_signature(3, 4)])).save(str(root / "jazz/waltz.mid"))
    midi_file(notes_track(waltz, extra=[time_signature(6, 8)])).save(str(root / "jazz/six8.mid"))
    flat = [(i * 120, i * 120 + 100, 60, 64) for i in range(40)]
    midi_file(notes_track(flat)).save(str(root / "classical/flat.mid"))
    (root / "classical/notes.mid").write_bytes(b"not a midi file at all")
    midi_file(notes_track([])).save(str(root / "classical/silent.mid"))
    midi_file(notes_track(waltz)).save(str(root / "loose.mid"))
    return root


def test_builds_with_filters_reasons_and_split(corpus, tmp_path):
    lines = []
    manifest = build.build_dataset(str(corpus), str(tmp_path / "out"), workers=2, log=lines.append)
    reasons = {r["file"]: r["reason"] for r in manifest["rejected"]}
    assert reasons.keys() == {"jazz/waltz.mid", "jazz/six8.mid", "classical/flat.mid",
                              "classical/notes.mid", "classical/silent.mid", "loose.mid"}
    assert "time signature 3/4" in reasons["jazz/waltz.mid"]
    assert "1 distinct velocities (< 20)" in reasons["classical/flat.mid"]
    assert reasons["classical/notes.mid"].startswith("unreadable: ")
    assert "notes.mid" in reasons["classical/notes.mid"]
    assert reasons["classical/silent.mid"] == "no piano notes"
    assert "no style" in reasons["loose.mid"]
    assert all(f"rejected {f}: {r}" in lines for f, r in reasons.items())
    table = lines[-2]
    assert "too few velocities" in table and "time signature" in table

    assert manifest["styles"] == ["classical", "jazz"]
    assert len(manifest["songs"]) == 20
    for style in ("classical", "jazz"):
        splits = [s["split"] for s in manifest["songs"] if s["style"] == style]
        assert splits.count("validation") == 1  # 5% of 10 songs rounds to 0: at least 1
    songs = dataset.load_songs(str(tmp_path / "out"))
    assert len(songs) == 20
    for song, entry in zip(songs, manifest["songs"]):
        assert song.inputs.dtype == np.uint8 and song.inputs.shape == (entry["steps"], 176)
        assert song.velocities.shape == (entry["steps"], 88)
        perf = midi.load_performance(str(corpus / entry["file"]))
        enc = encoding.encode(perf.notes, perf.ticks_per_beat)
        np.testing.assert_array_equal(song.inputs, enc.inputs)
        np.testing.assert_array_equal(song.velocities, enc.velocities)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["songs"] == manifest["songs"]


def test_quarter_beat_meters_and_explicit_lists(corpus, tmp_path):
    quarter = build.build_dataset(str(corpus), str(tmp_path / "q"), time_signatures="quarter",
                                  log=quiet)
    kept = {s["file"] for s in quarter["songs"]}
    assert "jazz/waltz.mid" in kept and "jazz/six8.mid" not in kept
    listed = build.build_dataset(str(corpus), str(tmp_path / "l"), time_signatures="4/4,6/8",
                                 min_velocities=1, log=quiet)
    kept = {s["file"] for s in listed["songs"]}
    assert {"jazz/six8.mid", "classical/flat.mid"} <= kept and "jazz/waltz.mid" not in kept
    with pytest.raises(build.BuildError, match="N/D"):
        build.build_dataset(str(corpus), str(tmp_path / "x"), time_signatures="four", log=quiet)


def test_rerun_reads_nothing_twice_and_notices_changes(corpus, tmp_path):
    out = str(tmp_path / "out")
    first = build.build_dataset(str(corpus), out, log=quiet)
    lines = []
    second = build.build_dataset(str(corpus), out, log=lines.append)
    assert lines[-1].startswith("examined 0 file(s)") and second["songs"] == first["songs"]
    # other filters reuse the cache too
    lines.clear()
    build.build_dataset(str(corpus), out, time_signatures="any", min_velocities=1,
                        log=lines.append)
    assert lines[-1].startswith("examined 0 file(s)")
    # a changed file is examined again
    shutil.copy(corpus / "jazz/jazz_000.mid", corpus / "classical/classical_000.mid")
    lines.clear()
    third = build.build_dataset(str(corpus), out, log=lines.append)
    assert lines[-1].startswith("examined 1 file(s)")
    changed = [s for s in third["songs"] if s["file"] == "classical/classical_000.mid"][0]
    assert changed["sha256"] != [s for s in first["songs"]
                                 if s["file"] == "classical/classical_000.mid"][0]["sha256"]


def test_cli_help_bad_folder_and_a_build(corpus, tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "data_prep.build", *args],
                                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    helped = run("--help")
    assert "--time_signatures" in helped.stdout and "quarter" in helped.stdout  # absl exits 1
    missing = run("--midi_dir=/no/such/folder", f"--out_dir={tmp_path / 'o'}")
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "error: --midi_dir /no/such/folder: no such folder"]
    built = run(f"--midi_dir={corpus}", f"--out_dir={tmp_path / 'o'}")
    assert built.returncode == 0, built.stderr
    assert "rejected classical/notes.mid: unreadable" in built.stdout
    assert "total" in built.stdout and (tmp_path / "o" / "manifest.json").is_file()


@pytest.mark.slow
def test_whole_corpus_with_the_paper_filters(corpus_dir, tmp_path):
    out = str(tmp_path / "corpus")
    paper = build.build_dataset(str(corpus_dir), out, log=quiet)
    by_style = {s: sum(x["style"] == s for x in paper["songs"]) for s in paper["styles"]}
    assert len(paper["songs"]) == 636
    assert by_style == {"classical": 314, "jazz": 107, "pop": 215}
    assert len(paper["rejected"]) == 299
    val_pieces = {s["piece"] for s in paper["songs"] if s["split"] == "validation"}
    train_pieces = {s["piece"] for s in paper["songs"] if s["split"] == "train"}
    assert not val_pieces & train_pieces
    for style, n in by_style.items():
        held = sum(s["split"] == "validation" for s in paper["songs"] if s["style"] == style)
        assert held == round(0.05 * n)
    quarter = build.build_dataset(str(corpus_dir), out, time_signatures="quarter", log=quiet)
    assert len(quarter["songs"]) == 935 and not quarter["rejected"]


def test_hostile_files_are_rejected_with_reasons_and_the_build_goes_on(tmp_path, monkeypatch):
    """One crashing file (OverflowError, KeySignatureError, MemoryError) used to abort the
    build with a traceback, no manifest and partial arrays left behind."""
    root = tmp_path / "midi" / "jazz"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    velocities = rng.permutation(np.arange(30, 60))
    lively = [(0, 60 + i % 12, int(v), 50) for i, v in enumerate(velocities)]
    good = note_events(lively) + END_OF_TRACK
    files = {
        "good.mid": smf_bytes(good),
        "karaoke.kar": smf_bytes(good),
        "overflow.mid": smf_bytes(vlq(2 ** 63) + good[1:]),
        "key.mid": smf_bytes(b"\x00\xff\x59\x02\x08\x00" + good),  # kept as an unknown meta
        "clock.mid": smf_bytes(b"\x00\xf8" + good),
        "two_tracks_format_0.mid": smf_bytes(good, good, fmt=0),
        "max_delta.mid": smf_bytes(note_events([(0, 60, 80, 1), (0x0FFFFFFF, 62, 90, 1)])
                                   + END_OF_TRACK, division=1),
        "memory.mid": smf_bytes(note_events(lively[:25]) + END_OF_TRACK),  # encode: MemoryError
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    os.mkfifo(root / "fifo.mid")  # reading it would block forever
    real_encode = encoding.encode

    def encode(notes, ticks_per_beat):
        if len(notes) == 25:
            raise MemoryError("Unable to allocate 88.0 GiB")
        return real_encode(notes, ticks_per_beat)

    monkeypatch.setattr(encoding, "encode", encode)
    lines = []
    manifest = build.build_dataset(str(tmp_path / "midi"), str(tmp_path / "out"), workers=1,
                                   min_velocities=1, log=lines.append)
    reasons = {r["file"]: r["reason"] for r in manifest["rejected"]}
    kept = {s["file"] for s in manifest["songs"]}
    assert kept == {"jazz/good.mid", "jazz/karaoke.kar", "jazz/key.mid",
                    "jazz/two_tracks_format_0.mid"}
    assert "delta time longer than 4 bytes" in reasons["jazz/overflow.mid"]
    assert "realtime message 0xF8" in reasons["jazz/clock.mid"]
    assert reasons["jazz/max_delta.mid"].startswith("too long: 1,073,741,828 steps")
    assert "not a regular file" in reasons["jazz/fifo.mid"]
    assert "failed (MemoryError: Unable to allocate 88.0 GiB)" in reasons["jazz/memory.mid"]
    assert all(r.startswith("unreadable: ") or r.startswith("too long") for r in reasons.values())
    assert (tmp_path / "out" / "manifest.json").is_file()
    left = [f for _, _, names in os.walk(tmp_path / "out" / "songs") for f in names]
    assert sorted(left) == sorted(f"{os.path.splitext(os.path.basename(f))[0]}.npz" for f in kept)
    assert "too long" in lines[-2]  # a column of the table


def test_a_failed_array_write_leaves_nothing_behind(tmp_path, monkeypatch):
    root = tmp_path / "midi" / "pop"
    root.mkdir(parents=True)
    midi_file(notes_track([(0, 480, 60, 80)])).save(str(root / "a.mid"))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    manifest = build.build_dataset(str(tmp_path / "midi"), str(tmp_path / "out"), workers=1,
                                   min_velocities=1, log=quiet)
    assert "No space left on device" in manifest["rejected"][0]["reason"]
    assert [f for _, _, names in os.walk(tmp_path / "out" / "songs") for f in names] == []
