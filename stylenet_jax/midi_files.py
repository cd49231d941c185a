"""MIDI files on disk: finding them below a folder, and saving one without ever leaving a
half-written file (a temporary file renamed over the target; symlinks, FIFOs and devices
written through), sweeping the temporaries a killed run left behind.

The bytes themselves come from ``stylenet_jax.smf.to_bytes``; errors are ``smf.MidiError``
(one line naming the file).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time

import mido

from stylenet_jax.atomic_write import current_umask
from stylenet_jax.smf import MidiError, shown, to_bytes

MIDI_SUFFIXES = (".mid", ".midi", ".kar")


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
    """Removes the folders ``_make_parents`` created (innermost first), where still empty."""
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            pass
