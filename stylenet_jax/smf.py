"""Standard MIDI Files: bytes (or a file on disk) -> ``mido.MidiFile`` and back, and the one-line
errors that name the file.

Our own reader, not mido's: every event must end inside its track chunk, a tempo or time
signature that cannot be decoded is refused (they change what the notes mean), any other meta
mido cannot decode is kept byte for byte, every meta keeps its delta time, realtime and
undefined status bytes are refused, and nothing is read that mido could not write back
(``to_bytes``). Unknown chunks are skipped; an unknown format, or a format-0 file with several
tracks, is read as format 1 with a warning.

What the notes of a file are is ``stylenet_jax.midi``'s job; finding files in a folder and
writing one to disk is ``stylenet_jax.midi_files``'.
"""

from __future__ import annotations

import io
import os
import struct

import mido
from mido.midifiles.meta import KeySignatureError, UnknownMetaMessage, build_meta_message


class MidiError(ValueError):
    """A MIDI file that cannot be read or written; the message is one line naming the file."""


MAX_FILE_BYTES = 16 * 2 ** 20  # far above any piano piece (the corpus's largest is 115 KB)
_REALTIME_NAMES = {0xF6: "tune request", 0xF8: "clock", 0xFA: "start", 0xFB: "continue",
                   0xFC: "stop", 0xFE: "active sensing"}
_CHANNEL_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}
_SYSTEM_COMMON_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1}
_TIMING_METAS = {0x51: "set_tempo", 0x58: "time_signature"}  # these must decode, or we refuse


def shown(path: str) -> str:
    """``path`` fit for one line of any terminal: undecodable bytes as \\xNN, control
    characters (a newline in a file name) escaped."""
    try:
        text = os.fsencode(path).decode("utf-8", "backslashreplace")
    except (UnicodeError, TypeError):
        text = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def one_line(text: str) -> str:
    """``text`` with every line break and control character escaped (messages stay one line)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


class _Refused(Exception):
    """Why bytes are not a MIDI file we can read and write back (one line, no path)."""


def _number(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """A variable-length number (at most 4 bytes, <= 0x0FFFFFFF, as the standard says) at
    ``pos``; returns (value, position after it)."""
    value = 0
    for _ in range(4):
        if pos >= end:
            raise _Refused(f"{what} runs past the end of its track chunk")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos
    raise _Refused(f"{what} longer than 4 bytes (the largest is 0x0FFFFFFF)")


def _meta_message(kind: int, payload: bytes, delta: int) -> mido.MetaMessage:
    """mido's meta message; a known kind whose data mido cannot decode (a key signature of
    8 sharps, a field too short) is kept as an unknown meta, written back byte for byte,
    unless it is a tempo or a time signature: those change what the notes mean.
    (mido's reader drops the delta time of a meta of unknown kind, moving every later event
    of its track earlier; here every meta keeps its delta.)"""
    try:
        msg = build_meta_message(kind, list(payload), delta)
    except (KeySignatureError, IndexError, KeyError, ValueError, TypeError) as e:
        if kind in _TIMING_METAS:
            raise _Refused(f"unreadable {_TIMING_METAS[kind]} event "
                           f"({payload.hex(' ') or 'no data'}: {e})") from None
        return UnknownMetaMessage(kind, payload, time=delta)
    msg.time = delta  # mido's UnknownMetaMessage for kinds it does not know has time 0
    return msg


MAX_DELTA = 0x0FFFFFFF  # the largest delta time a standard MIDI file can hold (4 bytes)


def _read_track(data: bytes, pos: int, end: int) -> mido.MidiTrack:
    """The events of the track chunk data[pos:end]. Every event must end inside the chunk.
    Running status continues across meta events (as mido reads it) but not across sysex or
    system common messages; realtime messages cannot be written to a file and are refused.

    An end of track before the last event is read as mido reads it; mido writes it back by
    adding its delta time to the next event's, so that sum must fit in 4 bytes too."""
    track = mido.MidiTrack()
    status = None
    ended = 0  # delta times of end-of-track events not yet followed by another event
    while pos < end:
        delta, pos = _number(data, pos, end, "a delta time")
        if pos >= end:
            raise _Refused("an event runs past the end of its track chunk")
        if data[pos] < 0x80:  # running status: the data bytes of the last channel message
            if status is None:
                raise _Refused(f"data byte 0x{data[pos]:02X} with no status before it "
                               f"(byte {pos})")
            kind = status
        else:
            kind = data[pos]
            pos += 1
        if kind < 0xF0:
            size = _CHANNEL_DATA_BYTES[kind >> 4]
            body = data[pos:pos + size]
            if len(body) < size or pos + size > end:
                raise _Refused("an event runs past the end of its track chunk")
            if max(body) > 0x7F:
                raise _Refused(f"status byte 0x{max(body):02X} inside a message (byte {pos})")
            msg = mido.Message.from_bytes(bytes([kind]) + body, time=delta)
            status = kind
            pos += size
        elif kind == 0xFF:
            if pos >= end:
                raise _Refused("an event runs past the end of its track chunk")
            meta, (size, pos) = data[pos], _number(data, pos + 1, end, "a meta event's length")
            if pos + size > end:
                raise _Refused("a meta event runs past the end of its track chunk")
            msg = _meta_message(meta, data[pos:pos + size], delta)
            pos += size
        elif kind in (0xF0, 0xF7):
            size, pos = _number(data, pos, end, "a sysex length")
            if pos + size > end:
                raise _Refused("a sysex event runs past the end of its track chunk")
            payload = data[pos:pos + size]
            pos += size
            if payload[:1] == b"\xf0":
                payload = payload[1:]
            if payload[-1:] == b"\xf7":
                payload = payload[:-1]
            if payload and max(payload) > 0x7F:
                raise _Refused(f"sysex data byte 0x{max(payload):02X} above 0x7F "
                               "(cannot be written back)")
            msg = mido.Message("sysex", data=payload, time=delta)
            status = None
        elif kind in _SYSTEM_COMMON_DATA_BYTES:
            size = _SYSTEM_COMMON_DATA_BYTES[kind]
            body = data[pos:pos + size]
            if len(body) < size or pos + size > end or max(body) > 0x7F:
                raise _Refused(f"bad system message 0x{kind:02X} (byte {pos - 1})")
            msg = mido.Message.from_bytes(bytes([kind]) + body, time=delta)
            status = None
            pos += size
        elif kind in _REALTIME_NAMES:
            raise _Refused(f"realtime message 0x{kind:02X} ({_REALTIME_NAMES[kind]}) at byte "
                           f"{pos - 1}: not allowed in a MIDI file")
        else:
            raise _Refused(f"undefined status byte 0x{kind:02X} (byte {pos - 1})")
        ended += delta
        if ended > MAX_DELTA:
            raise _Refused("end of track events in the middle of the track add up to a delta "
                           "time longer than 4 bytes (cannot be written back)")
        ended = ended if msg.type == "end_of_track" else 0
        track.append(msg)
    return track


def parse_midi(data: bytes) -> tuple[mido.MidiFile, tuple[str, ...]]:
    """A standard MIDI file's bytes -> (mido.MidiFile, warnings). Raises _Refused.

    Chunks other than MTrk are skipped, as the standard asks. An unknown format number (3 and
    up) is read as format 1, and so is a format-0 file with several tracks; each with a warning
    (they are also written back as format 1). The header's track count is read unsigned
    (mido reads it signed and so finds no track in a file of 32,768 or more).
    """
    if data[:4] != b"MThd":
        raise _Refused("not a MIDI file (no MThd header)")
    if len(data) < 14:
        raise _Refused("truncated MIDI file (the header is incomplete)")
    header_size, fmt, count, division = struct.unpack(">LHHH", data[4:14])
    if header_size < 6:
        raise _Refused(f"bad MIDI header (length {header_size}, need 6)")
    if fmt == 2:
        raise _Refused("MIDI format 2 (independent sequences) is not supported")
    if division & 0x8000 or division == 0:
        raise _Refused("SMPTE time division is not supported (need ticks per beat)"
                       if division else "0 ticks per beat")
    warnings = []
    pos, tracks = 8 + header_size, []
    while len(tracks) < count:
        if pos + 8 > len(data):
            raise _Refused(f"truncated MIDI file (the header announces {count} tracks, "
                           f"found {len(tracks)})")
        name, size = struct.unpack(">4sL", data[pos:pos + 8])
        if pos + 8 + size > len(data):
            raise _Refused(f"truncated MIDI file (track {len(tracks)} is cut short)")
        if name == b"MTrk":
            try:
                tracks.append(_read_track(data, pos + 8, pos + 8 + size))
            except _Refused as e:
                raise _Refused(f"track {len(tracks)}: {e}") from None
        elif not all(0x20 <= c < 0x7F for c in name):
            raise _Refused(f"not a MIDI chunk at byte {pos} ({name!r})")
        pos += 8 + size
    if fmt > 2:
        warnings.append(f"unknown MIDI format {fmt}: read and written as format 1")
        fmt = 1
    if fmt == 0 and len(tracks) > 1:
        warnings.append(f"format 0 with {len(tracks)} tracks: read and written as format 1")
        fmt = 1
    midi = mido.MidiFile(type=fmt, ticks_per_beat=division)
    midi.tracks = tracks
    return midi, tuple(warnings)


def read_file(path: str) -> tuple[mido.MidiFile, tuple[str, ...]]:
    """Reads the standard MIDI file at ``path`` (``parse_midi``): (mido.MidiFile, warnings,
    one line each without the path). Raises MidiError (one line naming the file) for a missing
    or non-regular file, an empty one, one over ``MAX_FILE_BYTES``, or bytes we refuse."""
    name = shown(path)
    if not os.path.lexists(path):
        raise MidiError(f"{name}: no such file")
    if not os.path.isfile(path):
        raise MidiError(f"{name}: not a regular file")
    size = os.path.getsize(path)
    if size == 0:
        raise MidiError(f"{name}: empty file")
    if size > MAX_FILE_BYTES:
        raise MidiError(f"{name}: {size:,} bytes; MIDI files over {MAX_FILE_BYTES // 2**20} MiB "
                        "are not read")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise MidiError(f"{name}: cannot read ({e.strerror or e})") from None
    try:
        return parse_midi(data)
    except _Refused as e:
        raise MidiError(f"{name}: {one_line(e)}") from None


def read_midi(path: str) -> mido.MidiFile:
    """Parses a standard MIDI file of format 0 or 1; raises MidiError (one line) otherwise."""
    return read_file(path)[0]


def to_bytes(midi: mido.MidiFile, name: str = "MIDI file") -> bytes:
    """The standard MIDI file of ``midi``; MidiError (one line naming ``name``) if mido cannot
    write it."""
    buffer = io.BytesIO()
    try:
        midi.save(file=buffer)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as e:
        raise MidiError(f"{name}: cannot be written as a MIDI file ({one_line(e)})") from None
    return buffer.getvalue()
