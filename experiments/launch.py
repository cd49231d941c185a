"""How the long-running apps (train, bench) start: one launcher step before ``app.run``.

``run(main)`` defines ``--huge_pages`` and, after flags are parsed and before ``main``,
re-executes the process with glibc's transparent-huge-page malloc where that applies (see
``stylenet_jax.hugepages``: some 15% of a CPU train step went to page faults without it; it
still paid on this project's 2-core machines, see ../shared/PERFORMANCE.md). The re-executed
process parses the same command line again, so ``main`` sees the same flags.
"""

from __future__ import annotations

import logging as std_logging
from typing import Callable, Sequence

from absl import app, flags, logging

from stylenet_jax.flag_parsing import parse_flags

flags.DEFINE_bool("huge_pages", True, "Linux: re-execute with glibc's transparent-huge-page "
                  "malloc (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) unless GLIBC_TUNABLES already "
                  "sets it: far fewer page faults for XLA's large CPU buffers (speed only).")


def run(main: Callable[[Sequence[str]], object], *, announce: bool = True,
        skip: Callable[[], bool] = lambda: False,
        flags_parser: Callable[[Sequence[str]], object] = parse_flags) -> None:
    """``app.run(main, flags_parser=...)`` with the huge-page re-execution first (unless
    ``--nohuge_pages`` or ``skip()`` after parsing). ``announce``: log the re-execution (a
    benchmark stays quiet and names the allocator in its report instead)."""

    def launched(argv: Sequence[str]) -> object:
        # JAX logs at INFO that it found no TPU on every start: not the run's news.
        std_logging.getLogger("jax._src.xla_bridge").setLevel(std_logging.WARNING)
        if flags.FLAGS.huge_pages and not skip():
            from stylenet_jax import hugepages

            hugepages.reexec(log=(lambda line: logging.info("%s", line)) if announce else None)
        return main(argv)

    app.run(launched, flags_parser=flags_parser)
