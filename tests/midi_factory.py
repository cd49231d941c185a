"""Builds small MIDI files with mido for tests: notes given in ticks, any tracks and channels."""

from __future__ import annotations

import mido


def track(events, name=None):
    """A MidiTrack from (tick, message) pairs in any order (stable by tick), deltas computed."""
    out = mido.MidiTrack()
    if name:
        out.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        out.append(msg.copy(time=tick - now))
        now = tick
    out.append(mido.MetaMessage("end_of_track", time=0))
    return out


def notes_track(notes, channel=0, name=None, extra=()):
    """A track from (start, end, pitch, velocity) notes plus extra (tick, message) events."""
    events = list(extra)
    for start, end, pitch, velocity in notes:
        events.append((start, mido.Message("note_on", note=pitch, velocity=velocity,
                                           channel=channel)))
        events.append((end, mido.Message("note_off", note=pitch, velocity=64, channel=channel)))
    # note-offs before note-ons at the same tick, as well-formed files have them
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    return track(events, name)


def midi_file(*tracks, ticks_per_beat=480, type=None):
    """A MidiFile of the given tracks (format 0 for one track, else 1 unless given)."""
    m = mido.MidiFile(type=type if type is not None else (0 if len(tracks) == 1 else 1),
                      ticks_per_beat=ticks_per_beat)
    m.tracks.extend(tracks)
    return m


def time_signature(numerator, denominator, tick=0):
    return (tick, mido.MetaMessage("time_signature", numerator=numerator,
                                   denominator=denominator))


def tempo(bpm, tick=0):
    return (tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
