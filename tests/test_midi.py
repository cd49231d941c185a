"""stylenet_jax.midi: reading notes, the note rules, writing velocities back, bad input (the
reader's own refusals are in test_smf.py)."""

import io

import mido
import numpy as np
import pytest

from midi_factory import midi_file, notes_track, tempo, time_signature, track
from stylenet_jax import midi, midi_files, smf


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
    midi_files.save_atomically(out, str(path))
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
        with pytest.raises(smf.MidiError) as err:
            midi.load_performance(path)
        message = str(err.value)
        assert path in message and reason in message and "\n" not in message, name
