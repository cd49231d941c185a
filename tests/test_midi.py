"""stylenet_jax.midi: reading notes, the note rules, writing velocities back, bad input."""

import io
import os

import mido
import numpy as np
import pytest

from midi_factory import (END_OF_TRACK, chunk, midi_file, note_events, notes_track, smf, tempo,
                          time_signature, track, vlq)
from stylenet_jax import midi


def save(m, tmp_path, name="x.mid"):
    path = str(tmp_path / name)
    m.save(path)
    return path


def note_tuples(notes):
    return list(zip(notes.pitch.tolist(), notes.start.tolist(), notes.end.tolist(),
                    notes.velocity.tolist(), notes.channel.tolist()))


def test_chord_and_sustain(tmp_path):
    m = midi_file(notes_track([(0, 960, 60, 80), (0, 960, 64, 70), (0, 480, 67, 60)]))
    perf = midi.load_performance(save(m, tmp_path))
    assert sorted(note_tuples(perf.notes)) == [(60, 0, 960, 80, 0), (64, 0, 960, 70, 0),
                                               (67, 0, 480, 60, 0)]
    assert perf.ticks_per_beat == 480 and perf.end_tick == 960


def test_format1_tracks_and_channels_merge(tmp_path):
    right = notes_track([(0, 240, 72, 90), (240, 480, 74, 91)], channel=0, name="RH")
    left = notes_track([(0, 480, 48, 50)], channel=1, name="LH")
    perf = midi.load_performance(save(midi_file(track([tempo(100)]), right, left), tmp_path))
    assert note_tuples(perf.notes) == [(72, 0, 240, 90, 0), (48, 0, 480, 50, 1),
                                       (74, 240, 480, 91, 0)]
    # each note remembers its note-on message
    for t, i, pitch in zip(perf.notes.track.tolist(), perf.notes.index.tolist(),
                           perf.notes.pitch.tolist()):
        msg = perf.midi.tracks[t][i]
        assert msg.type == "note_on" and msg.note == pitch


def test_drums_are_not_piano_notes(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]), notes_track([(0, 480, 36, 127)], channel=9))
    perf = midi.load_performance(save(m, tmp_path))
    assert perf.notes.pitch.tolist() == [60]


def test_restruck_key_ends_previous_note(tmp_path):
    events = [(0, mido.Message("note_on", note=60, velocity=80)),
              (300, mido.Message("note_on", note=60, velocity=40)),
              (900, mido.Message("note_off", note=60))]
    perf = midi.load_performance(save(midi_file(track(events)), tmp_path))
    assert note_tuples(perf.notes) == [(60, 0, 300, 80, 0), (60, 300, 900, 40, 0)]


def test_velocity_zero_is_note_off_and_orphan_offs_are_ignored(tmp_path):
    events = [(0, mido.Message("note_off", note=50)),
              (0, mido.Message("note_on", note=60, velocity=70)),
              (240, mido.Message("note_on", note=60, velocity=0)),
              (480, mido.Message("note_off", note=60))]
    perf = midi.load_performance(save(midi_file(track(events)), tmp_path))
    assert note_tuples(perf.notes) == [(60, 0, 240, 70, 0)]


def test_note_held_at_end_of_file_ends_there(tmp_path):
    events = [(0, mido.Message("note_on", note=60, velocity=70)),
              (480, mido.Message("note_on", note=62, velocity=71)),
              (720, mido.Message("note_off", note=62)),
              (1000, mido.Message("control_change", control=64, value=0))]
    perf = midi.load_performance(save(midi_file(track(events)), tmp_path))
    assert note_tuples(perf.notes) == [(60, 0, 1000, 70, 0), (62, 480, 720, 71, 0)]


def test_time_signatures_are_collected(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)],
                              extra=[time_signature(3, 4), time_signature(6, 8, 1440)]))
    assert midi.load_performance(save(m, tmp_path)).time_signatures == ((3, 4), (6, 8))


def test_with_velocities_changes_only_those_note_ons(tmp_path):
    conductor = track([tempo(90), time_signature(4, 4), tempo(120, 960)])
    right = notes_track([(0, 240, 72, 90), (240, 480, 74, 91)],
                        extra=[(0, mido.Message("program_change", program=3)),
                               (100, mido.Message("control_change", control=64, value=127))])
    drums = notes_track([(0, 120, 36, 100)], channel=9)
    original = midi_file(conductor, right, drums)
    perf = midi.load_performance(save(original, tmp_path))
    out = midi.with_velocities(perf.midi, perf.notes, np.array([11, 22]))
    path = tmp_path / "out.mid"
    midi.save_atomically(out, str(path))
    again = mido.MidiFile(str(path))
    assert again.type == original.type and again.ticks_per_beat == original.ticks_per_beat
    changed = []
    for t_old, t_new in zip(perf.midi.tracks, again.tracks, strict=True):
        assert len(t_old) == len(t_new)
        for a, b in zip(t_old, t_new):
            if a.type == "note_on" and a.velocity != b.velocity:
                changed.append((a.note, b.velocity))
                assert a.copy(velocity=b.velocity) == b
            else:
                assert a == b
    assert changed == [(72, 11), (74, 22)]
    with pytest.raises(ValueError):
        midi.with_velocities(perf.midi, perf.notes, np.array([0, 5]))
    with pytest.raises(ValueError):
        midi.with_velocities(perf.midi, perf.notes, np.array([5]))


def test_save_atomically_leaves_no_partial_file(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]))
    m.tracks[0].insert(0, mido.Message("note_on", note=61, velocity=1, time=0))
    m.tracks[0][0].time = -5  # unserialisable: mido raises while writing
    target = tmp_path / "out.mid"
    with pytest.raises(Exception):
        midi.save_atomically(m, str(target))
    assert os.listdir(tmp_path) == []
    with pytest.raises(midi.MidiError, match="cannot write"):
        midi.save_atomically(midi_file(notes_track([(0, 1, 60, 1)])),
                             str(tmp_path / "missing_dir" / "out.mid"))


def _bad_files(tmp_path):
    good = io.BytesIO()
    midi_file(notes_track([(0, 480, 60, 80), (480, 960, 62, 81)])).save(file=good)
    fmt2 = midi_file(notes_track([(0, 480, 60, 80)]), notes_track([(0, 480, 62, 80)]), type=2)
    files = {
        "not_midi.mid": (b"hello, I am a text file\n" * 4, "not a MIDI file"),
        "empty.mid": (b"", "empty file"),
        "truncated.mid": (good.getvalue()[:40], "truncated"),
        "format2.mid": (None, "format 2"),
    }
    paths = {}
    for name, (data, reason) in files.items():
        path = tmp_path / name
        if data is None:
            fmt2.save(str(path))
        else:
            path.write_bytes(data)
        paths[name] = (str(path), reason)
    paths["missing.mid"] = (str(tmp_path / "missing.mid"), "no such file")
    return paths


def test_bad_input_gives_one_clear_line_naming_the_file(tmp_path):
    for name, (path, reason) in _bad_files(tmp_path).items():
        with pytest.raises(midi.MidiError) as err:
            midi.load_performance(path)
        message = str(err.value)
        assert path in message and reason in message and "\n" not in message, name


# ----------------------------------------------------------------------------- odd and hostile files

NOTES = note_events([(0, 60, 80, 240), (0, 64, 70, 240)]) + END_OF_TRACK


def write(tmp_path, data, name="x.mid"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_the_reader_matches_mido_on_ordinary_files(tmp_path):
    conductor = track([tempo(90), time_signature(3, 4), tempo(120, 960),
                       (5, mido.MetaMessage("key_signature", key="F#m")),
                       (7, mido.MetaMessage("text", text="caf\xe9")),
                       (9, mido.Message("sysex", data=[1, 2, 3]))])
    right = notes_track([(0, 240, 72, 90), (240, 480, 74, 91)],
                        extra=[(100, mido.Message("control_change", control=64, value=127)),
                               (120, mido.Message("pitchwheel", pitch=-300)),
                               (130, mido.Message("aftertouch", value=3)),
                               (140, mido.Message("polytouch", note=72, value=9)),
                               (150, mido.Message("program_change", program=5)),
                               (160, mido.Message("songpos", pos=3))])
    path = save(midi_file(conductor, right), tmp_path)
    ours, theirs = midi.read_midi(path), mido.MidiFile(path)
    assert (ours.type, ours.ticks_per_beat) == (theirs.type, theirs.ticks_per_beat)
    assert [list(t) for t in ours.tracks] == [list(t) for t in theirs.tracks]
    assert midi.to_bytes(ours) == open(path, "rb").read()


def test_unknown_formats_are_read_as_format_1_with_a_warning(tmp_path):
    for fmt in (3, 7, 0x7FFF, 0x8000, 0xFFFF):
        perf = midi.load_performance(write(tmp_path, smf(NOTES, fmt=fmt)))
        assert perf.midi.type == 1 and len(perf.notes) == 2
        assert perf.warnings == (f"unknown MIDI format {fmt}: read and written as format 1",)
        out = mido.MidiFile(file=io.BytesIO(midi.to_bytes(
            midi.with_velocities(perf.midi, perf.notes, np.array([1, 2])))))
        assert out.type == 1


def test_format_0_with_two_tracks_is_written_as_format_1(tmp_path):
    perf = midi.load_performance(write(tmp_path, smf(NOTES, NOTES, fmt=0)))
    assert perf.midi.type == 1 and len(perf.notes) == 4
    assert perf.warnings == ("format 0 with 2 tracks: read and written as format 1",)
    midi.save_atomically(perf.midi, str(tmp_path / "out.mid"))
    assert mido.MidiFile(str(tmp_path / "out.mid")).type == 1
    assert midi.load_performance(write(tmp_path, smf(NOTES, fmt=0))).warnings == ()


def test_a_key_signature_mido_cannot_decode_is_kept_byte_for_byte(tmp_path):
    odd = b"\x00\xff\x59\x02\x08\x00"  # 8 sharps: no such key
    data = smf(odd + NOTES)
    perf = midi.load_performance(write(tmp_path, data))
    assert len(perf.notes) == 2 and perf.midi.tracks[0][0].type == "unknown_meta"
    assert midi.to_bytes(perf.midi) == data
    short = midi.load_performance(write(tmp_path, smf(b"\x00\xff\x59\x00" + NOTES)))
    assert len(short.notes) == 2  # no data at all: kept as an unknown meta too


def test_bad_tempo_or_meter_is_refused_not_guessed(tmp_path):
    for event, what in ((b"\x00\xff\x51\x01\x07", "set_tempo"),
                        (b"\x00\xff\x58\x01\x04", "time_signature")):
        with pytest.raises(midi.MidiError, match=f"track 0: unreadable {what} event"):
            midi.load_performance(write(tmp_path, smf(event + NOTES)))


def test_realtime_and_undefined_status_bytes_are_refused_with_one_line(tmp_path):
    for byte in (0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xF6):
        path = write(tmp_path, smf(NOTES[:-4] + b"\x00" + bytes([byte]) + END_OF_TRACK))
        with pytest.raises(midi.MidiError, match=f"realtime message 0x{byte:02X}") as err:
            midi.load_performance(path)
        assert path in str(err.value) and "track 0" in str(err.value)
    for byte in (0xF4, 0xF5, 0xF9, 0xFD):
        with pytest.raises(midi.MidiError, match="undefined status byte"):
            midi.load_performance(write(tmp_path, smf(b"\x00" + bytes([byte]) + NOTES)))


def test_delta_times_longer_than_4_bytes_are_refused(tmp_path):
    for delta in (2 ** 63, 2 ** 28):
        data = smf(vlq(delta) + b"\x90\x3c\x40" + END_OF_TRACK)
        with pytest.raises(midi.MidiError, match="delta time longer than 4 bytes"):
            midi.load_performance(write(tmp_path, data))
    longest = midi.load_performance(write(tmp_path, smf(vlq(0x0FFFFFFF) + NOTES[1:])))
    assert longest.notes.start.tolist() == [0x0FFFFFFF, 0x0FFFFFFF + 240]


def test_65535_tracks_are_all_read(tmp_path):
    empty = chunk(b"MTrk", END_OF_TRACK)
    data = smf(*([empty] * 65534), chunk(b"MTrk", NOTES))
    assert data[10:12] == b"\xff\xff"
    perf = midi.load_performance(write(tmp_path, data))
    assert len(perf.midi.tracks) == 65535 and len(perf.notes) == 2
    assert perf.notes.track.tolist() == [65534, 65534]


def test_unknown_chunks_are_skipped_as_the_standard_says(tmp_path):
    data = smf(chunk(b"XFIH", b"\x01\x02\x03"), chunk(b"MTrk", NOTES), chunk(b"ALIE", b""),
               chunk(b"MTrk", NOTES), header_extra=b"\x00\x00")
    perf = midi.load_performance(write(tmp_path, data))
    assert len(perf.midi.tracks) == 2 and len(perf.notes) == 4
    garbage = smf(chunk(b"\x00\x01\x02\x03", b""), chunk(b"MTrk", NOTES))
    with pytest.raises(midi.MidiError, match="not a MIDI chunk at byte 14"):
        midi.load_performance(write(tmp_path, garbage))


def test_lies_and_truncations_are_one_line_each(tmp_path):
    cases = {
        b"hello": "not a MIDI file",
        b"MThd\x00\x00": "truncated MIDI file (the header is incomplete)",
        smf(NOTES, count=2): "header announces 2 tracks, found 1",
        smf(NOTES)[:-3]: "track 0 is cut short",
        smf(chunk(b"MTrk", NOTES, length=7)): "runs past the end of its track chunk",
        smf(b"\x00\x3c\x40" + NOTES): "no status before it",
        smf(b"\x00\x90\x3c\x90" + NOTES): "status byte 0x90 inside a message",
        smf(b"\x00\xf0\x03\x01\x85\xf7" + NOTES): "sysex data byte 0x85",
        smf(NOTES, division=0xE728): "SMPTE",
        smf(NOTES, division=0): "0 ticks per beat",
        smf(NOTES, fmt=2): "format 2",
        smf(NOTES)[:4] + b"\x00\x00\x00\x02" + smf(NOTES)[8:]: "bad MIDI header",
    }
    for data, reason in cases.items():
        path = write(tmp_path, data)
        with pytest.raises(midi.MidiError) as err:
            midi.load_performance(path)
        assert reason in str(err.value) and str(err.value).startswith(path), (data, err.value)
    folder = tmp_path / "folder.mid"
    folder.mkdir()
    with pytest.raises(midi.MidiError, match="not a regular file"):
        midi.load_performance(str(folder))


def test_running_status_continues_across_metas(tmp_path):
    data = smf(b"\x00\x90\x3c\x40" + b"\x00\xff\x01\x01a" + b"\x10\x3c\x00" + END_OF_TRACK)
    perf = midi.load_performance(write(tmp_path, data))
    assert note_tuples(perf.notes) == [(60, 0, 16, 64, 0)]
    after_sysex = smf(b"\x00\x90\x3c\x40\x00\xf0\x01\xf7\x10\x3c\x00" + END_OF_TRACK)
    with pytest.raises(midi.MidiError, match="no status before it"):
        midi.load_performance(write(tmp_path, after_sysex))


def test_find_midi_files_takes_kar_and_shown_names_are_one_line(tmp_path):
    for name in ("a.mid", "b.MIDI", "c.kar", "d.txt", ".hidden.mid"):
        (tmp_path / name).write_bytes(b"")
    assert midi.find_midi_files(str(tmp_path)) == ["a.mid", "b.MIDI", "c.kar"]
    odd = os.fsdecode(b"/tmp/x\xff\ny.mid")
    assert midi.shown(odd) == "/tmp/x\\xff\\ny.mid"


# ----------------------------------------------------------------------------- writing


def test_save_writes_through_symlinks_and_into_fifos_and_devices(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]))
    data = midi.to_bytes(m)
    real = tmp_path / "real.mid"
    real.write_bytes(b"old")
    link = tmp_path / "link.mid"
    link.symlink_to(real)
    midi.save_atomically(m, str(link))
    assert link.is_symlink() and real.read_bytes() == data
    dangling = tmp_path / "dangling.mid"
    dangling.symlink_to(tmp_path / "new.mid")
    midi.save_atomically(m, str(dangling))
    assert dangling.is_symlink() and (tmp_path / "new.mid").read_bytes() == data

    midi.save_atomically(m, "/dev/null")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")

    fifo = str(tmp_path / "fifo.mid")
    os.mkfifo(fifo)
    with pytest.raises(midi.MidiError, match="no process reads this FIFO"):
        midi.save_atomically(m, fifo)  # never blocks
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        midi.save_atomically(m, fifo)
        assert os.read(reader, 1 << 16) == data
    finally:
        os.close(reader)
    with pytest.raises(midi.MidiError, match="is a folder"):
        midi.save_atomically(m, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["dangling.mid", "fifo.mid", "link.mid", "new.mid",
                                            "real.mid"]


def test_save_makes_parents_only_when_it_writes_and_sweeps_stale_temporaries(tmp_path):
    m = midi_file(notes_track([(0, 480, 60, 80)]))
    midi.save_atomically(m, str(tmp_path / "a" / "b" / "out.mid"), make_parents=True)
    assert (tmp_path / "a" / "b" / "out.mid").is_file()
    bad = midi_file(notes_track([(0, 480, 60, 80)]))
    bad.tracks[0].insert(0, mido.Message("clock"))  # mido will not write realtime messages
    with pytest.raises(midi.MidiError, match="cannot be written as a MIDI file"):
        midi.save_atomically(bad, str(tmp_path / "c" / "out.mid"), make_parents=True)
    assert not (tmp_path / "c").exists()

    stale, fresh = tmp_path / ".stylenet-abcd1234.mid", tmp_path / ".stylenet-zzzz9999.mid"
    other = tmp_path / ".stylenet-notours.mid"
    for path in (stale, fresh, other):
        path.write_bytes(b"")
    os.utime(stale, (0, 0))
    os.utime(other, (0, 0))
    midi._swept.discard(str(tmp_path))
    midi.save_atomically(m, str(tmp_path / "out.mid"))
    assert not stale.exists() and fresh.exists() and other.exists()


def test_end_of_track_in_the_middle_must_leave_writable_delta_times(tmp_path):
    """mido drops an end of track before the last event and adds its delta time to the next
    event's: when that sum would not fit in 4 bytes, the file is refused (found by fuzzing:
    the written file could not be read back)."""
    long_delta = vlq(0x0FFFFFFF)
    ok = smf(long_delta + b"\xff\x2f\x00" + NOTES)
    perf = midi.load_performance(write(tmp_path, ok))
    again = midi.parse_midi(midi.to_bytes(perf.midi))[0]
    assert [m.time for m in again.tracks[0]][:2] == [0x0FFFFFFF, 240]
    for data in (smf(long_delta + b"\xff\x2f\x00" + long_delta + NOTES[1:]),
                 smf(NOTES[:-4] + long_delta + b"\xff\x2f\x00" + long_delta + b"\xff\x2f\x00")):
        with pytest.raises(midi.MidiError, match="add up to a delta time longer than 4 bytes"):
            midi.load_performance(write(tmp_path, data))


def test_a_meta_of_unknown_kind_keeps_its_delta_time(tmp_path):
    """mido reads a meta of unknown kind with time 0, moving everything after it earlier
    (found by fuzzing: the written notes started 256 ticks early)."""
    data = smf(vlq(300) + b"\xff\x8d\x02\x01\x02" + NOTES)
    perf = midi.load_performance(write(tmp_path, data))
    assert perf.midi.tracks[0][0].time == 300 and perf.notes.start.tolist() == [300, 540]
    assert mido.MidiFile(file=io.BytesIO(data)).tracks[0][0].time == 0  # mido's reading
    assert midi.to_bytes(perf.midi) == data
