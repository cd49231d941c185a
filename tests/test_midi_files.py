"""stylenet_jax.midi_files: finding MIDI files in a folder; saving one atomically (no partial
file, through symlinks, into FIFOs and devices, parent folders, stale temporaries swept)."""

import os

import mido
import pytest

from midi_factory import midi_file, notes_track
from stylenet_jax import midi_files, smf


def test_save_atomically_leaves_no_partial_file(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]))
    m.tracks[0].insert(0, mido.Message("note_on", note=61, velocity=1, time=0))
    m.tracks[0][0].time = -5  # unserialisable: mido raises while writing
    target = tmp_path / "out.mid"
    with pytest.raises(Exception):
        midi_files.save_atomically(m, str(target))
    assert os.listdir(tmp_path) == []
    with pytest.raises(smf.MidiError, match="cannot write"):
        midi_files.save_atomically(midi_file(notes_track([(0, 1, 60, 1)])),
                             str(tmp_path / "missing_dir" / "out.mid"))


def test_save_writes_through_symlinks_and_into_fifos_and_devices(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]))
    data = smf.to_bytes(m)
    real = tmp_path / "real.mid"
    real.write_bytes(b"old")
    link = tmp_path / "link.mid"
    link.symlink_to(real)
    midi_files.save_atomically(m, str(link))
    assert link.is_symlink() and real.read_bytes() == data
    dangling = tmp_path / "dangling.mid"
    dangling.symlink_to(tmp_path / "new.mid")
    midi_files.save_atomically(m, str(dangling))
    assert dangling.is_symlink() and (tmp_path / "new.mid").read_bytes() == data

    midi_files.save_atomically(m, "/dev/null")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")

    fifo = str(tmp_path / "fifo.mid")
    os.mkfifo(fifo)
    with pytest.raises(smf.MidiError, match="no process reads this FIFO"):
        midi_files.save_atomically(m, fifo)  # never blocks
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        midi_files.save_atomically(m, fifo)
        assert os.read(reader, 1 << 16) == data
    finally:
        os.close(reader)
    with pytest.raises(smf.MidiError, match="is a folder"):
        midi_files.save_atomically(m, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["dangling.mid", "fifo.mid", "link.mid", "new.mid",
                                            "real.mid"]


def test_save_makes_parents_only_when_it_writes_and_sweeps_stale_temporaries(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]))
    midi_files.save_atomically(m, str(tmp_path / "a" / "b" / "out.mid"), make_parents=True)
    assert (tmp_path / "a" / "b" / "out.mid").is_file()
    bad = midi_file(notes_track([(0, 480, 60, 80)]))
    bad.tracks[0].insert(0, mido.Message("clock"))  # mido will not write realtime messages
    with pytest.raises(smf.MidiError, match="cannot be written as a MIDI file"):
        midi_files.save_atomically(bad, str(tmp_path / "c" / "out.mid"), make_parents=True)
    assert not (tmp_path / "c").exists()

    stale, fresh = tmp_path / ".stylenet-abcd1234.mid", tmp_path / ".stylenet-zzzz9999.mid"
    other = tmp_path / ".stylenet-notours.mid"
    for path in (stale, fresh, other):
        path.write_bytes(b"")
    os.utime(stale, (0, 0))
    os.utime(other, (0, 0))
    midi_files.save_atomically(m, str(tmp_path / "out.mid"))
    assert not stale.exists() and fresh.exists() and other.exists()


def test_find_midi_files_takes_kar_and_skips_hidden_files(tmp_path):
    for name in ("a.mid", "b.MIDI", "c.kar", "d.txt", ".hidden.mid"):
        (tmp_path / name).write_bytes(b"")
    assert midi_files.find_midi_files(str(tmp_path)) == ["a.mid", "b.MIDI", "c.kar"]
