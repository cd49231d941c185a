"""Writing a file so that readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> str:
    """Calls ``write(f)`` on a temporary binary file in ``path``'s folder (made if needed),
    then renames it to ``path``; on any error the temporary file is removed and ``path`` is
    untouched. The file gets the permissions a plain ``open`` would give it (0666 less the
    umask, not mkstemp's 0600). Returns ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomically(path: str, text: str) -> str:
    """``write_atomically`` of ``text`` in UTF-8."""
    return write_atomically(path, lambda f: f.write(text.encode("utf-8")))
