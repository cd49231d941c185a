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


# Raw bytes, for files mido would not write (malformed, unusual or hostile ones).

def vlq(value):
    """A MIDI variable-length number (any length: longer than the standard's 4 bytes too)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


class Chunk(bytes):
    """A whole chunk's bytes (name, length, body), passed to ``smf_bytes`` as it is."""


def chunk(name, body, length=None):
    """A chunk: 4-byte name, big-endian length (``length`` to lie about it), body."""
    return Chunk(name + (len(body) if length is None else length).to_bytes(4, "big") + body)


def smf_bytes(*tracks, fmt=1, division=480, count=None, header_extra=b""):
    """A standard MIDI file's bytes from track bodies (event bytes, wrapped in MTrk chunks) or
    ``Chunk``s (kept as they are); ``count`` overrides the header's track count (default:
    the number of MTrk chunks)."""
    chunks = [t if isinstance(t, Chunk) else chunk(b"MTrk", t) for t in tracks]
    if count is None:
        count = sum(c[:4] == b"MTrk" for c in chunks)
    header = chunk(b"MThd", fmt.to_bytes(2, "big") + count.to_bytes(2, "big")
                   + division.to_bytes(2, "big") + header_extra)
    return header + b"".join(chunks)


END_OF_TRACK = b"\x00\xff\x2f\x00"


def note_events(notes, channel=0):
    """Track bytes (no end of track) for (delta, pitch, velocity, length) notes in sequence:
    note-on after ``delta`` ticks, note-off ``length`` ticks later."""
    out = b""
    for delta, pitch, velocity, length in notes:
        out += vlq(delta) + bytes([0x90 | channel, pitch, velocity])
        out += vlq(length) + bytes([0x80 | channel, pitch, 64])
    return out
