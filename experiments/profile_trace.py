"""A JAX profiler trace read as XLA ops: where a jitted step's time goes, op by op.

* ``find_trace_file`` / ``profile_runs`` / ``load_trace``: the Chrome/Perfetto JSON trace that
  ``jax.profiler.trace(dir, create_perfetto_trace=True)`` writes
  (``dir/plugins/profile/<run>/perfetto_trace.json.gz``);
* ``op_events`` / ``op_times``: per XLA op (complete events, ``ph == "X"``), its total SELF
  time (its duration minus the XLA ops nested in it on the same thread: a ``while`` loop's self
  time is its loop control, its body's ops are counted as themselves) and its number of calls;
  runtime wrapper events (``is_runtime_event``: ``ThunkExecutor::Execute``,
  ``PjitFunction(...)``, Python frames ``$file:line fn``, thread-pool bookkeeping,
  ``end: op`` completion markers) are left out;
* ``busy_us``: the wall time during which some op ran, on any thread.

Pure functions over plain data (a trace is ``{'traceEvents': [event dicts]}``); times are
microseconds, as in the trace. What each op came from is ``experiments.hlo_labels``; the
per-step summary and its markdown are ``experiments.profile_summary``.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import os
import re
from typing import Any, Container, Iterable, Mapping

# Runtime wrapper events, not XLA ops (exact names or prefixes).
RUNTIME_PREFIXES = ("ThunkExecutor", "PjitFunction", "$", "SlinkyThreadPool", "ThreadpoolListener",
                    "CommonPjRt", "PjRt", "end: ", "Wait for", "Handle input", "ParseArguments",
                    "AllocateOutputBuffers", "PythonRefManager")
# An HLO instruction's name: what an XLA op's event is called (``ynn_fusion.2``, ``while.3``).
_HLO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_EPS_US = 1e-3  # rounding of ts/dur in a trace (microseconds)


def is_runtime_event(name: str) -> bool:
    """True for the runtime's own events (executors, dispatch, Python frames, thread pools,
    ``block_until_ready``), which wrap or accompany XLA ops but are not ops."""
    return (name.startswith(RUNTIME_PREFIXES) or "block_until_ready" in name
            or not _HLO_NAME.fullmatch(name))


def find_trace_file(profile_dir: str, exclude: Container[str] = ()) -> str:
    """The newest trace JSON under ``profile_dir/plugins/profile/*/`` (the Perfetto file
    ``perfetto_trace.json.gz`` if there, else ``<host>.trace.json.gz``), skipping run
    folders in ``exclude`` (those that were there before the trace). FileNotFoundError if
    none."""
    runs = [d for d in glob.glob(os.path.join(profile_dir, "plugins", "profile", "*"))
            if os.path.isdir(d) and d not in exclude]
    for run in sorted(runs, key=os.path.getmtime, reverse=True):
        for pattern in ("perfetto_trace.json.gz", "*.trace.json.gz"):
            found = sorted(glob.glob(os.path.join(run, pattern)))
            if found:
                return found[0]
    raise FileNotFoundError(f"no *.trace.json.gz under {profile_dir}/plugins/profile/")


def profile_runs(profile_dir: str) -> set[str]:
    """The run folders already under ``profile_dir`` (pass to ``find_trace_file``)."""
    return set(glob.glob(os.path.join(profile_dir, "plugins", "profile", "*")))


def load_trace(path: str) -> dict[str, Any]:
    """A Chrome-trace JSON file (gzipped or not) as ``{'traceEvents': [...], ...}``."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return data if isinstance(data, dict) else {"traceEvents": data}


@dataclasses.dataclass
class OpTime:
    """One XLA op over the whole trace: ``self_us`` (duration minus nested XLA ops),
    ``total_us`` (plain duration, nested ops included), ``calls``."""

    name: str
    self_us: float = 0.0
    total_us: float = 0.0
    calls: int = 0


def op_events(trace: Mapping[str, Any], op_names: Container[str] | None = None,
              module: str | None = None) -> list[Mapping[str, Any]]:
    """The trace's XLA op events: complete (``ph == "X"``, with ``ts`` and ``dur``), not
    runtime events (``is_runtime_event``), named in ``op_names`` when given (the HLO's
    instruction names), and, when ``module`` is given and the event says
    (``args.hlo_module``), of that HLO module."""
    out = []
    for e in trace.get("traceEvents", ()):
        if e.get("ph") != "X" or "dur" not in e or "ts" not in e:
            continue
        name = e.get("name", "")
        if is_runtime_event(name) or (op_names is not None and name not in op_names):
            continue
        mod = (e.get("args") or {}).get("hlo_module")
        if module is None or mod is None or mod == module:
            out.append(e)
    return out


def op_times(trace: Mapping[str, Any], op_names: Container[str] | None = None,
             module: str | None = None) -> dict[str, OpTime]:
    """Sums the XLA op events (``op_events``) per name. Self time: op events on one thread
    (pid, tid) nest by time; each op's duration is taken off the self time of the innermost op
    enclosing it (a ``while`` loop and the ops of its body)."""
    threads: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for e in op_events(trace, op_names, module):
        threads.setdefault((e.get("pid"), e.get("tid")), []).append(e)
    out: dict[str, OpTime] = {}
    for evs in threads.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack: list[tuple[float, OpTime]] = []  # (end, op) of the ops open at this time
        for e in evs:
            ts, dur = float(e["ts"]), float(e["dur"])
            while stack and stack[-1][0] <= ts + _EPS_US:  # ended before this one starts
                stack.pop()
            op = out.setdefault(e["name"], OpTime(e["name"]))
            op.calls += 1
            op.total_us += dur
            op.self_us += dur
            parent = next((p for end, p in reversed(stack) if end >= ts + dur - _EPS_US), None)
            if parent is not None:
                parent.self_us -= dur
            stack.append((ts + dur, op))
    return out


def busy_us(events: Iterable[Mapping[str, Any]]) -> float:
    """Wall time (us) during which at least one of ``events`` was running, on any thread: the
    length of the union of their intervals."""
    spans = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events)
    total, start, end = 0.0, None, None
    for a, b in spans:
        if end is None or a > end:
            if end is not None:
                total += end - start
            start, end = a, b
        else:
            end = max(end, b)
    return total + (end - start if end is not None else 0.0)
