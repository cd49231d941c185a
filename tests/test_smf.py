"""stylenet_jax.smf: the Standard MIDI File reader on ordinary, odd and hostile files (refusals
are one line naming the file), writing back byte for byte, and one-line file names.

Where a test's point is that the events were read right, it looks at them through the notes
(``midi.load_performance``)."""

import io
import os

import mido
import numpy as np
import pytest

from midi_factory import (END_OF_TRACK, chunk, midi_file, note_events, notes_track, smf_bytes,
                          tempo, time_signature, track, vlq)
from stylenet_jax import midi, smf


def save(m, tmp_path, name="x.mid"):
    path = str(tmp_path / name)
    m.save(path)
    return path


def write(tmp_path, data, name="x.mid"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def note_tuples(notes):
    return list(zip(notes.pitch.tolist(), notes.start.tolist(), notes.end.tolist(),
                    notes.velocity.tolist(), notes.channel.tolist()))


NOTES = note_events([(0, 60, 80, 240), (0, 64, 70, 240)]) + END_OF_TRACK


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
    ours, theirs = smf.read_midi(path), mido.MidiFile(path)
    assert (ours.type, ours.ticks_per_beat) == (theirs.type, theirs.ticks_per_beat)
    assert [list(t) for t in ours.tracks] == [list(t) for t in theirs.tracks]
    assert smf.to_bytes(ours) == open(path, "rb").read()


def test_unknown_formats_are_read_as_format_1_with_a_warning(tmp_path):
    for fmt in (3, 7, 0x7FFF, 0x8000, 0xFFFF):
        perf = midi.load_performance(write(tmp_path, smf_bytes(NOTES, fmt=fmt)))
        assert perf.midi.type == 1 and len(perf.notes) == 2
        assert perf.warnings == (f"unknown MIDI format {fmt}: read and written as format 1",)
        out = mido.MidiFile(file=io.BytesIO(smf.to_bytes(
            midi.with_velocities(perf.midi, perf.notes, np.array([1, 2])))))
        assert out.type == 1


def test_format_0_with_two_tracks_is_written_as_format_1(tmp_path):
    perf = midi.load_performance(write(tmp_path, smf_bytes(NOTES, NOTES, fmt=0)))
    assert perf.midi.type == 1 and len(perf.notes) == 4
    assert perf.warnings == ("format 0 with 2 tracks: read and written as format 1",)
    assert mido.MidiFile(file=io.BytesIO(smf.to_bytes(perf.midi))).type == 1
    assert midi.load_performance(write(tmp_path, smf_bytes(NOTES, fmt=0))).warnings == ()


def test_a_key_signature_mido_cannot_decode_is_kept_byte_for_byte(tmp_path):
    odd = b"\x00\xff\x59\x02\x08\x00"  # 8 sharps: no such key
    data = smf_bytes(odd + NOTES)
    perf = midi.load_performance(write(tmp_path, data))
    assert len(perf.notes) == 2 and perf.midi.tracks[0][0].type == "unknown_meta"
    assert smf.to_bytes(perf.midi) == data
    short = midi.load_performance(write(tmp_path, smf_bytes(b"\x00\xff\x59\x00" + NOTES)))
    assert len(short.notes) == 2  # no data at all: kept as an unknown meta too


def test_bad_tempo_or_meter_is_refused_not_guessed(tmp_path):
    for event, what in ((b"\x00\xff\x51\x01\x07", "set_tempo"),
                        (b"\x00\xff\x58\x01\x04", "time_signature")):
        with pytest.raises(smf.MidiError, match=f"track 0: unreadable {what} event"):
            smf.read_midi(write(tmp_path, smf_bytes(event + NOTES)))


def test_realtime_and_undefined_status_bytes_are_refused_with_one_line(tmp_path):
    for byte in (0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xF6):
        path = write(tmp_path, smf_bytes(NOTES[:-4] + b"\x00" + bytes([byte]) + END_OF_TRACK))
        with pytest.raises(smf.MidiError, match=f"realtime message 0x{byte:02X}") as err:
            smf.read_midi(path)
        assert path in str(err.value) and "track 0" in str(err.value)
    for byte in (0xF4, 0xF5, 0xF9, 0xFD):
        with pytest.raises(smf.MidiError, match="undefined status byte"):
            smf.read_midi(write(tmp_path, smf_bytes(b"\x00" + bytes([byte]) + NOTES)))


def test_delta_times_longer_than_4_bytes_are_refused(tmp_path):
    for delta in (2 ** 63, 2 ** 28):
        data = smf_bytes(vlq(delta) + b"\x90\x3c\x40" + END_OF_TRACK)
        with pytest.raises(smf.MidiError, match="delta time longer than 4 bytes"):
            smf.read_midi(write(tmp_path, data))
    longest = midi.load_performance(write(tmp_path, smf_bytes(vlq(0x0FFFFFFF) + NOTES[1:])))
    assert longest.notes.start.tolist() == [0x0FFFFFFF, 0x0FFFFFFF + 240]


def test_65535_tracks_are_all_read(tmp_path):
    empty = chunk(b"MTrk", END_OF_TRACK)
    data = smf_bytes(*([empty] * 65534), chunk(b"MTrk", NOTES))
    assert data[10:12] == b"\xff\xff"
    perf = midi.load_performance(write(tmp_path, data))
    assert len(perf.midi.tracks) == 65535 and len(perf.notes) == 2
    assert perf.notes.track.tolist() == [65534, 65534]


def test_unknown_chunks_are_skipped_as_the_standard_says(tmp_path):
    data = smf_bytes(chunk(b"XFIH", b"\x01\x02\x03"), chunk(b"MTrk", NOTES), chunk(b"ALIE", b""),
               chunk(b"MTrk", NOTES), header_extra=b"\x00\x00")
    perf = midi.load_performance(write(tmp_path, data))
    assert len(perf.midi.tracks) == 2 and len(perf.notes) == 4
    garbage = smf_bytes(chunk(b"\x00\x01\x02\x03", b""), chunk(b"MTrk", NOTES))
    with pytest.raises(smf.MidiError, match="not a MIDI chunk at byte 14"):
        smf.read_midi(write(tmp_path, garbage))


def test_lies_and_truncations_are_one_line_each(tmp_path):
    cases = {
        b"hello": "not a MIDI file",
        b"MThd\x00\x00": "truncated MIDI file (the header is incomplete)",
        smf_bytes(NOTES, count=2): "header announces 2 tracks, found 1",
        smf_bytes(NOTES)[:-3]: "track 0 is cut short",
        smf_bytes(chunk(b"MTrk", NOTES, length=7)): "runs past the end of its track chunk",
        smf_bytes(b"\x00\x3c\x40" + NOTES): "no status before it",
        smf_bytes(b"\x00\x90\x3c\x90" + NOTES): "status byte 0x90 inside a message",
        smf_bytes(b"\x00\xf0\x03\x01\x85\xf7" + NOTES): "sysex data byte 0x85",
        smf_bytes(NOTES, division=0xE728): "SMPTE",
        smf_bytes(NOTES, division=0): "0 ticks per beat",
        smf_bytes(NOTES, fmt=2): "format 2",
        smf_bytes(NOTES)[:4] + b"\x00\x00\x00\x02" + smf_bytes(NOTES)[8:]: "bad MIDI header",
    }
    for data, reason in cases.items():
        path = write(tmp_path, data)
        with pytest.raises(smf.MidiError) as err:
            smf.read_midi(path)
        assert reason in str(err.value) and str(err.value).startswith(path), (data, err.value)
    folder = tmp_path / "folder.mid"
    folder.mkdir()
    with pytest.raises(smf.MidiError, match="not a regular file"):
        smf.read_midi(str(folder))


def test_running_status_continues_across_metas(tmp_path):
    data = smf_bytes(b"\x00\x90\x3c\x40" + b"\x00\xff\x01\x01a" + b"\x10\x3c\x00" + END_OF_TRACK)
    perf = midi.load_performance(write(tmp_path, data))
    assert note_tuples(perf.notes) == [(60, 0, 16, 64, 0)]
    after_sysex = smf_bytes(b"\x00\x90\x3c\x40\x00\xf0\x01\xf7\x10\x3c\x00" + END_OF_TRACK)
    with pytest.raises(smf.MidiError, match="no status before it"):
        smf.read_midi(write(tmp_path, after_sysex))


def test_end_of_track_in_the_middle_must_leave_writable_delta_times(tmp_path):
    """mido drops an end of track before the last event and adds its delta time to the next
    event's: when that sum would not fit in 4 bytes, the file is refused (found by fuzzing:
    the written file could not be read back)."""
    long_delta = vlq(0x0FFFFFFF)
    ok = smf_bytes(long_delta + b"\xff\x2f\x00" + NOTES)
    perf = midi.load_performance(write(tmp_path, ok))
    again = smf.parse_midi(smf.to_bytes(perf.midi))[0]
    assert [m.time for m in again.tracks[0]][:2] == [0x0FFFFFFF, 240]
    for data in (smf_bytes(long_delta + b"\xff\x2f\x00" + long_delta + NOTES[1:]),
                 smf_bytes(NOTES[:-4] + long_delta + b"\xff\x2f\x00" + long_delta
                           + b"\xff\x2f\x00")):
        with pytest.raises(smf.MidiError, match="add up to a delta time longer than 4 bytes"):
            smf.read_midi(write(tmp_path, data))


def test_a_meta_of_unknown_kind_keeps_its_delta_time(tmp_path):
    """mido reads a meta of unknown kind with time 0, moving everything after it earlier
    (found by fuzzing: the written notes started 256 ticks early)."""
    data = smf_bytes(vlq(300) + b"\xff\x8d\x02\x01\x02" + NOTES)
    perf = midi.load_performance(write(tmp_path, data))
    assert perf.midi.tracks[0][0].time == 300 and perf.notes.start.tolist() == [300, 540]
    assert mido.MidiFile(file=io.BytesIO(data)).tracks[0][0].time == 0  # mido's reading
    assert smf.to_bytes(perf.midi) == data


def test_shown_names_are_one_line():
    odd = os.fsdecode(b"/tmp/x\xff\ny.mid")
    assert smf.shown(odd) == "/tmp/x\\xff\\ny.mid"
