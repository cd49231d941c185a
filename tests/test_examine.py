"""data_prep.examine: one file's facts and arrays; any failure is one line, never an exception."""

import hashlib
import os

import numpy as np

from data_prep import examine
from midi_factory import midi_file, notes_track, time_signature


def test_facts_and_arrays_of_a_file(tmp_path):
    path = str(tmp_path / "song.mid")
    notes = [(i * 120, i * 120 + 100, 60 + i, 40 + i) for i in range(8)] + [(0, 100, 10, 90)]
    midi_file(notes_track(notes, extra=[time_signature(3, 4)])).save(path)
    arrays = str(tmp_path / "song.npz")
    facts = examine.examine(path, arrays)
    assert facts == {"notes": 8, "out_of_range": 1, "n_velocities": 8, "time_signatures": [[3, 4]],
                     "steps": facts["steps"], "ticks_per_beat": 480, "seconds_per_beat": 0.5,
                     "arrays": True}  # eight sixteenths at 120 bpm
    with np.load(arrays) as saved:
        assert saved["inputs"].dtype == np.uint8 and saved["inputs"].shape == (facts["steps"], 176)
        assert saved["velocities"].shape == (facts["steps"], 88)
    assert "arrays" not in examine.examine(path)  # no arrays path: nothing written


def test_failures_are_one_line_naming_the_file(tmp_path):
    path = tmp_path / "bad.mid"
    path.write_bytes(b"not a midi file")
    facts = examine.examine(str(path), str(tmp_path / "bad.npz"))
    assert facts == {"error": f"{path}: not a MIDI file (no MThd header)"}
    assert not (tmp_path / "bad.npz").exists()


def test_content_hash_and_no_hash_for_what_is_not_a_regular_file(tmp_path):
    path = tmp_path / "a.mid"
    path.write_bytes(b"abc")
    assert examine.file_sha256(str(path)) == hashlib.sha256(b"abc").hexdigest()
    os.mkfifo(tmp_path / "fifo.mid")
    assert examine.file_sha256(str(tmp_path / "fifo.mid")) is None
    assert examine.file_sha256(str(tmp_path / "missing.mid")) is None
