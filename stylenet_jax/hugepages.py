"""Transparent huge pages for XLA's CPU buffers, through glibc's ``glibc.malloc.hugetlb``.

XLA on the CPU mallocs each large temporary of a train step (input projections, their
gradients, saved gates: 36 MB each per layer at 32 windows x 200 steps), glibc maps fresh
memory for every one of them, and the kernel faults it in 4 KiB at a time: about 33,000 page
faults per bidirectional layer per step, some 15% of its time on one core. With the tunable
``glibc.malloc.hugetlb=1`` (glibc >= 2.35), malloc asks for transparent huge pages instead and
the same step takes ~900 faults. The tunable is read when a process starts, so a program that
wants it re-executes itself (same PID, same arguments) with it set. Where the kernel's
transparent huge pages are off, or glibc is older, the setting does nothing. This module does
not import JAX.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

TUNABLE = "glibc.malloc.hugetlb=1"
VARIABLE = "GLIBC_TUNABLES"


def environment(env: Mapping[str, str], platform: str = sys.platform) -> dict[str, str] | None:
    """``env`` plus the huge-page tunable, or None where there is nothing to do: not Linux, or
    ``GLIBC_TUNABLES`` already says something about ``glibc.malloc.hugetlb`` (the user's own
    choice wins, and a re-executed process does not loop)."""
    current = env.get(VARIABLE, "")
    if platform != "linux" or "glibc.malloc.hugetlb" in current:
        return None
    return {**env, VARIABLE: f"{current}:{TUNABLE}" if current else TUNABLE}


def reexec(argv: Sequence[str] | None = None, log: Callable[[str], None] | None = None) -> None:
    """Re-executes this process with ``environment(os.environ)`` (does not return), or returns
    at once where that is None. ``argv`` defaults to the interpreter's original command line."""
    env = environment(os.environ)
    if env is None:
        return
    argv = list(sys.orig_argv if argv is None else argv)
    if log:
        log(f"re-executing with {VARIABLE}={env[VARIABLE]} (huge pages for XLA's CPU buffers; "
            "--nohuge_pages to skip)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
