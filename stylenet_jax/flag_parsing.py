"""absl flag parsing for every command: a bad flag or an unreadable flagfile is one line on
stderr and exit status 2, never a traceback (absl alone prints usage and exits 1, and a
flagfile that is not UTF-8 text escapes it as a UnicodeDecodeError)."""

from __future__ import annotations

import sys
from typing import Sequence

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
