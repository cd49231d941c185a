"""Runs several commands at once for the bad-input tests, which start a process per case: most
of each process is Python importing JAX and the project, which the cores can do side by side."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

Result = TypeVar("Result")


def run_side_by_side(run: Callable[..., Result],
                     argument_lists: Sequence[Sequence[str]]) -> list[Result]:
    """``[run(*arguments) for arguments in argument_lists]``, in that order, with as many
    running at once as the machine has cores (``run`` starts a process and waits for it)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda arguments: run(*arguments), argument_lists))
