"""mido at the edge: read any standard MIDI file into piano notes, write velocities back.

Note rules (the paper merged all hands/tracks into one piano part):
- Every note of every track and channel is a piano note, except channel 10 (drums; index 9).
- A note-on with velocity 0 is a note-off. Note-offs are paired with the open note of the same
  (track, channel, pitch); a note-off with no open note is ignored.
- A re-struck key (note-on while the same (track, channel, pitch) is still held) ends the held
  note at the new note-on's tick and starts a new note.
- A note still held at the end of the file ends at the file's last tick.

Each note keeps (track, index): where its note-on message is, so a velocity can be written back
into a copy of the ORIGINAL file with every other message untouched.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import re
import stat
import struct
import tempfile
import time

import mido
import numpy as np
from mido.midifiles.meta import KeySignatureError, UnknownMetaMessage, build_meta_message

from stylenet_jax.atomic_write import current_umask

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0.


class MidiError(ValueError):
    """A MIDI file that cannot be read or written; the message is one line naming the file."""


@dataclasses.dataclass(frozen=True)
class Notes:
    """Piano notes as parallel arrays of length n, sorted by (start, track, index).

    pitch int16; start, end int64 (absolute ticks, end >= start); velocity uint8 (1..127);
    channel uint8 (0..15); track, index int32 (the note-on is ``midi.tracks[track][index]``).
    """

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray
    channel: np.ndarray
    track: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.pitch)

    def select(self, keep: np.ndarray) -> "Notes":
        """The notes where the boolean (n,) array ``keep`` is True, order kept."""
        return Notes(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))


@dataclasses.dataclass(frozen=True)
class Performance:
    """A parsed MIDI file: the mido object, its piano notes and facts used for filtering."""

    path: str
    midi: mido.MidiFile
    notes: Notes
    time_signatures: tuple[tuple[int, int], ...]  # distinct (numerator, denominator), file order
    end_tick: int
    warnings: tuple[str, ...] = ()  # repairs made while reading (one line each, no path)

    @property
    def ticks_per_beat(self) -> int:
        return self.midi.ticks_per_beat


MIDI_SUFFIXES = (".mid", ".midi", ".kar")
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


def find_midi_files(folder: str) -> list[str]:
    """Paths of the .mid/.midi/.kar files below ``folder`` (hidden ones skipped), relative to
    it, '/'-separated, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if name.lower().endswith(MIDI_SUFFIXES) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


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


def _read_file(path: str) -> tuple[mido.MidiFile, tuple[str, ...]]:
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
    return _read_file(path)[0]


def _track_notes(track: mido.MidiTrack, track_number: int, rows: list,
                 signatures: list) -> tuple[int, dict]:
    """Appends closed notes' (pitch, start, end, velocity, channel, track, index) rows.

    Returns the track's last tick and its still-held notes {(channel, pitch): (start, vel, idx)}.
    """
    tick = 0
    held: dict[tuple[int, int], tuple[int, int, int]] = {}  # (channel, pitch) -> (start, vel, idx)
    for index, msg in enumerate(track):
        tick += msg.time
        kind = msg.type
        if kind == "note_on" or kind == "note_off":
            if msg.channel == DRUM_CHANNEL:
                continue
            key = (msg.channel, msg.note)
            opened = held.pop(key, None)
            if opened is not None:
                rows.append((msg.note, opened[0], tick, opened[1], msg.channel, track_number, opened[2]))
            if kind == "note_on" and msg.velocity > 0:
                held[key] = (tick, msg.velocity, index)
        elif kind == "time_signature":
            signatures.append((msg.numerator, msg.denominator))
    return tick, held


def extract_notes(midi: mido.MidiFile) -> tuple[Notes, tuple[tuple[int, int], ...], int]:
    """All piano notes of all tracks (see module rules), distinct time signatures, last tick."""
    rows: list = []
    signatures: list = []
    open_notes = []
    end_tick = 0
    for number, track in enumerate(midi.tracks):
        last, held = _track_notes(track, number, rows, signatures)
        end_tick = max(end_tick, last)
        open_notes += [(pitch, start, None, vel, ch, number, idx)
                       for (ch, pitch), (start, vel, idx) in held.items()]
    rows += [(p, s, end_tick, v, c, t, i) for p, s, _, v, c, t, i in open_notes]
    rows.sort(key=lambda r: (r[1], r[5], r[6]))
    table = np.array(rows, dtype=np.int64).reshape(-1, 7)
    notes = Notes(pitch=table[:, 0].astype(np.int16), start=table[:, 1], end=table[:, 2],
                  velocity=table[:, 3].astype(np.uint8), channel=table[:, 4].astype(np.uint8),
                  track=table[:, 5].astype(np.int32), index=table[:, 6].astype(np.int32))
    return notes, tuple(dict.fromkeys(signatures)), end_tick


def load_performance(path: str) -> Performance:
    """Reads ``path`` into a Performance; raises MidiError with a one-line reason."""
    midi, warnings = _read_file(path)
    try:
        notes, signatures, end_tick = extract_notes(midi)
    except (AttributeError, TypeError, ValueError) as e:
        raise MidiError(f"{shown(path)}: malformed MIDI events ({one_line(e)})") from None
    return Performance(path=path, midi=midi, notes=notes, time_signatures=signatures,
                       end_tick=end_tick, warnings=warnings)


def tick_seconds(midi: mido.MidiFile, ticks: np.ndarray) -> np.ndarray:
    """Seconds from the file's start of each absolute tick in ``ticks`` (int (n,)), float64 (n,),
    following every set_tempo event of every track (500,000 us per beat before the first)."""
    changes = {0: 500_000}
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes[tick] = msg.tempo  # a later track's change at one tick wins, as mido's merge
    at = np.array(sorted(changes), np.int64)
    tempo = np.array([changes[t] for t in at], np.float64)
    seconds_per_tick = tempo / 1e6 / midi.ticks_per_beat
    start_seconds = np.concatenate([[0.0], np.cumsum(np.diff(at) * seconds_per_tick[:-1])])
    ticks = np.asarray(ticks, np.int64)
    segment = np.searchsorted(at, ticks, side="right") - 1
    return start_seconds[segment] + (ticks - at[segment]) * seconds_per_tick[segment]


def with_velocities(midi: mido.MidiFile, notes: Notes, velocities: np.ndarray) -> mido.MidiFile:
    """A copy of ``midi`` in which note i's note-on has velocity ``velocities[i]`` (1..127).

    Every other message (and every other note-on) is the original, in the same order and
    track layout. velocities: integer (n,) array, one per note in ``notes``.
    """
    velocities = np.asarray(velocities)
    if velocities.shape != (len(notes),):
        raise ValueError(f"need {len(notes)} velocities, got shape {velocities.shape}")
    if len(velocities) and (velocities.min() < 1 or velocities.max() > 127):
        raise ValueError("note-on velocities must be in 1..127")
    tracks = [mido.MidiTrack(track) for track in midi.tracks]
    for track, index, velocity in zip(notes.track.tolist(), notes.index.tolist(),
                                      velocities.tolist()):
        tracks[track][index] = tracks[track][index].copy(velocity=int(velocity))
    out = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat,
                        charset=midi.charset)
    out.tracks = tracks
    return out


TEMPORARY_PREFIX = ".stylenet-"
_TEMPORARY = re.compile(re.escape(TEMPORARY_PREFIX) + r"[a-z0-9_]{8}\.mid")
STALE_SECONDS = 60.0
_swept: set[str] = set()


def remove_stale_temporaries(directory: str) -> list[str]:
    """Removes this module's temporary files (``.stylenet-XXXXXXXX.mid``) older than a minute
    from ``directory``: what a run killed while writing leaves behind. Once per directory and
    process; returns the names removed. Errors are ignored (it is housekeeping)."""
    directory = os.path.abspath(directory)
    if directory in _swept:
        return []
    _swept.add(directory)
    removed, now = [], time.time()
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if (_TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                            and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS):
                        os.unlink(entry.path)
                        removed.append(entry.name)
                except OSError:
                    pass
    except OSError:
        pass
    return removed


def _make_parents(directory: str) -> list[str]:
    """Creates ``directory`` and its missing parents; returns those created, outermost first."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    created = []
    for folder in reversed(missing):
        os.mkdir(folder)
        created.append(folder)
    return created


def _write_in_place(data: bytes, path: str) -> None:
    """Writes ``data`` into an existing FIFO or character device (e.g. /dev/stdout) as it is:
    never blocks waiting for a FIFO reader (no reader is an error)."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def to_bytes(midi: mido.MidiFile, name: str = "MIDI file") -> bytes:
    """The standard MIDI file of ``midi``; MidiError (one line naming ``name``) if mido cannot
    write it."""
    buffer = io.BytesIO()
    try:
        midi.save(file=buffer)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as e:
        raise MidiError(f"{name}: cannot be written as a MIDI file ({one_line(e)})") from None
    return buffer.getvalue()


def save_atomically(midi: mido.MidiFile, path: str, *, make_parents: bool = False) -> None:
    """Writes ``midi`` to ``path``: never a half-written file, nothing at all on an error.

    The bytes are made in memory first. A regular (or new) file is written as a temporary file
    in its folder, then renamed over it; a symlink keeps pointing where it did and its target
    is replaced; an existing FIFO or character device (/dev/stdout, /dev/null) is opened and
    written to; a folder or any other kind of file is refused. ``make_parents`` creates missing
    parent folders (removed again if the write fails). Stale temporary files of an earlier
    killed run in the target folder are removed (``remove_stale_temporaries``).
    """
    name = shown(path)
    data = to_bytes(midi, name)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None  # a new file, or a symlink to one that is not there yet
    except OSError as e:
        raise MidiError(f"{name}: cannot write ({e.strerror or e})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise MidiError(f"{name}: is a folder")
    if mode is not None and not stat.S_ISREG(mode):
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
            raise MidiError(f"{name}: not a regular file, FIFO or character device")
        try:
            _write_in_place(data, path)
        except OSError as e:
            reason = "no process reads this FIFO" if e.errno == errno.ENXIO else e.strerror or e
            raise MidiError(f"{name}: cannot write ({reason})") from None
        return
    target = os.path.realpath(path) if os.path.islink(path) else path
    directory = os.path.dirname(os.path.abspath(target))
    created = []
    try:
        if make_parents:
            created = _make_parents(directory)
        remove_stale_temporaries(directory)
        fd, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=".mid", dir=directory)
    except OSError as e:
        _remove_folders(created)
        raise MidiError(f"{name}: cannot write here ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _remove_folders(created)
        if isinstance(e, OSError):
            raise MidiError(f"{name}: cannot write ({e.strerror or e})") from None
        raise


def _remove_folders(created: list[str]) -> None:
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            pass
