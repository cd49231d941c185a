"""absl flag parsing for every command: a bad flag or an unreadable flagfile is one line on
stderr and exit status 2, never a traceback (absl alone prints usage and exits 1, and a
flagfile that is not UTF-8 text escapes it as a UnicodeDecodeError)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Sequence

from absl import flags


def parse_flags(argv: Sequence[str]) -> list[str]:
    """``flags.FLAGS(argv)``: the arguments left after the flags. Exits with status 2 and a
    one-line ``error: ...`` for a bad flag value, an unknown flag, or a flagfile that cannot
    be read as text."""
    try:
        return flags.FLAGS(list(argv))
    except flags.Error as e:
        problem = str(e)
    except UnicodeDecodeError as e:
        problem = f"a --flagfile is not text ({e.reason} at byte {e.start})"
    except OSError as e:
        problem = f"cannot read a --flagfile: {e}"
    first = (problem.splitlines() or [""])[0]
    print(f"error: {first} (see --help)", file=sys.stderr)
    sys.exit(2)


def usage_error(message: str) -> NoReturn:
    """Bad input found after parsing: one line on stderr, exit status 2."""
    print(f"error: {message} (see --help)", file=sys.stderr)
    sys.exit(2)


def make_writable_folder(flag: str, path: str) -> None:
    """Makes folder ``path`` (given as ``--flag``) if needed, or exits with ``usage_error``
    when it is a file, cannot be made, or cannot be written by this user."""
    if os.path.exists(path) and not os.path.isdir(path):
        usage_error(f"--{flag}={path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        usage_error(f"--{flag}={path}: cannot make that folder ({e.strerror})")
    if not os.access(path, os.W_OK | os.X_OK):
        usage_error(f"--{flag}={path}: not a folder this user can write")
