"""stylenet_jax.note_selection and perform_file's use of it: the piano part by program, or the
tracks / channels asked for; the other notes' velocities as they were, byte for byte."""

import mido
import numpy as np
import pytest

from midi_factory import midi_file, notes_track
from performer_factory import export_tiny_model
from stylenet_jax import midi, note_selection, performer


def program(number, channel, tick=0):
    return (tick, mido.Message("program_change", program=number, channel=channel))


def phrase(pitch, velocity=70, count=24):
    return [(i * 240, i * 240 + 200, pitch + i % 5, velocity) for i in range(count)]


def band_file(path):
    """Track 0: piano (program 0) on channel 1; track 1: bass (program 33) on channel 2."""
    midi_file(notes_track(phrase(60), channel=0, extra=[program(0, 0)]),
              notes_track(phrase(36, 90), channel=1, extra=[program(33, 1)])).save(path)
    return path


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    return performer.Stylizer(export_tiny_model(str(tmp_path_factory.mktemp("m") / "m.npz")))


def perform(stylizer, source, target, **kwargs):
    return performer.perform_file(source, target, stylizer=stylizer,
                                  blend={"classical": 0.5, "jazz": 0.5}, **kwargs)


def track_messages(path, number):
    return [m.bytes() for m in mido.MidiFile(path).tracks[number] if not m.is_meta]


def test_band_file_performs_the_piano_and_leaves_the_bass_byte_identical(tmp_path, stylizer):
    source, target = band_file(str(tmp_path / "band.mid")), str(tmp_path / "out.mid")
    result = perform(stylizer, source, target)
    assert result.notes == 24 and result.changed > 0
    assert result.left == "24 non-piano notes left as they were: program 33"
    assert track_messages(target, 1) == track_messages(source, 1)  # the bass, untouched
    assert track_messages(target, 0) != track_messages(source, 0)
    line = performer.describe(target, result, "style x")
    assert "notes changed (24 non-piano notes left as they were: program 33)" in line
    # the model read only the piano: the same velocities as the piano part alone
    alone = str(tmp_path / "alone.mid")
    midi_file(notes_track(phrase(60), channel=0, extra=[program(0, 0)])).save(alone)
    assert perform(stylizer, alone, str(tmp_path / "alone_out.mid")).velocities.tolist() == \
        result.velocities.tolist()


def test_a_string_quintet_is_refused_and_nothing_written(tmp_path, stylizer):
    source, target = str(tmp_path / "quintet.mid"), str(tmp_path / "out.mid")
    midi_file(*[notes_track(phrase(50 + 5 * c), channel=c, extra=[program(p, c)])
                for c, p in enumerate([40, 40, 41, 42, 42])]).save(source)
    with pytest.raises(performer.StylizeError,
                       match="no piano notes \\(programs 40, 41, 42 only\\): use --channels "
                             "or --tracks to choose"):
        perform(stylizer, source, target)
    assert not (tmp_path / "out.mid").exists()
    result = perform(stylizer, source, target, channels=(2,))  # channel 3, as asked
    assert result.notes == 24 and "96 notes outside --channels=3" in result.left


def test_channels_and_tracks_choose_exactly_their_notes(tmp_path, stylizer):
    source = band_file(str(tmp_path / "band.mid"))
    bass = perform(stylizer, source, str(tmp_path / "bass.mid"), channels=(1,))
    assert bass.notes == 24 and bass.left == "24 notes outside --channels=2 left as they were"
    assert track_messages(str(tmp_path / "bass.mid"), 0) == track_messages(source, 0)
    assert track_messages(str(tmp_path / "bass.mid"), 1) != track_messages(source, 1)
    both = perform(stylizer, source, str(tmp_path / "both.mid"), tracks=(0, 1))
    assert both.notes == 48 and both.left == ""
    assert both.performed.all()
    with pytest.raises(performer.StylizeError, match="no notes on --tracks=1 --channels=1 "
                       "\\(notes are on tracks 0, 1, channels 1, 2\\)"):
        perform(stylizer, source, str(tmp_path / "none.mid"), tracks=(1,), channels=(0,))


def test_no_program_changes_performs_every_note(tmp_path):
    source = str(tmp_path / "plain.mid")
    midi_file(notes_track(phrase(60)), notes_track(phrase(36), channel=1)).save(source)
    perf = midi.load_performance(source)
    choice = note_selection.choose(perf.midi, perf.notes)
    assert choice.mask.all() and choice.note == ""


def test_programs_follow_time_track_and_fall_back_to_the_channel(tmp_path):
    # track 0 sets channel 1 to strings at beat 12; track 1 plays channel 1 with no program of
    # its own (falls back to track 0's), and channel 3 is never given a program
    source = str(tmp_path / "changes.mid")
    midi_file(notes_track(phrase(60), channel=0, extra=[program(48, 0, 240 * 12)]),
              notes_track(phrase(40, count=4), channel=0),
              notes_track(phrase(70, count=4), channel=2)).save(source)
    perf = midi.load_performance(source)
    programs = note_selection.note_programs(perf.midi, perf.notes)
    first = perf.notes.track == 0
    np.testing.assert_array_equal(programs[first], [-1] * 12 + [48] * 12)
    assert (programs[perf.notes.track == 1] == -1).all()  # before beat 12
    assert (programs[perf.notes.track == 2] == -1).all()
    choice = note_selection.choose(perf.midi, perf.notes)
    assert int((~choice.mask).sum()) == 12 and "program 48" in choice.note


def test_parse_tracks_and_channels():
    assert note_selection.parse_tracks("0, 2") == (0, 2)
    assert note_selection.parse_channels("1,2") == (0, 1)
    assert note_selection.parse_tracks(None) is None and note_selection.parse_channels("") is None
    for text, words in [("x", "'x' is not a number"), ("0", "out of range 1..16"),
                        ("17", "out of range"), ("10", "drum channel")]:
        with pytest.raises(note_selection.SelectionError, match=words):
            note_selection.parse_channels(text)
    with pytest.raises(note_selection.SelectionError, match="out of range"):
        note_selection.parse_tracks("-1")
