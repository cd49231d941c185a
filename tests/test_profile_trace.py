"""experiments.profile_trace: runtime events, self times and nesting, busy time, finding
and loading a trace (on the hand-made trace of profile_factory.py)."""

import gzip
import json
import os

import pytest

from experiments import profile_trace as pt
from profile_factory import X, make_trace


def test_runtime_events_are_not_ops():
    for name in ("ThunkExecutor::Execute", "ThunkExecutor::Execute (wait for completion)",
                 "PjitFunction(traced)", "$profiler.py:307 trace", "SlinkyThreadPool::Run",
                 "$api.py:2479 block_until_ready", "end: ynn_fusion.2", "ParseArguments",
                 "Wait for donation holds"):
        assert pt.is_runtime_event(name), name
    for name in ("ynn_fusion.2", "copy_bitcast_fusion", "while.3", "dot.10",
                 "bitcast_dynamic-update-slice_fusion.6"):
        assert not pt.is_runtime_event(name), name


def test_self_times_calls_and_nesting():
    times = pt.op_times(make_trace())
    assert set(times) == {"while.175", "ynn_fusion", "add_divide_fusion.5", "ynn_fusion.7",
                          "fusion.99"}  # no module filter: the other program's op too
    w = times["while.175"]
    assert w.calls == 2 and w.total_us == 200
    assert w.self_us == pytest.approx(2 * (100 - 20 * (2 + 1)))  # body ops taken off
    assert times["ynn_fusion"].calls == 40 and times["ynn_fusion"].self_us == pytest.approx(80)
    assert times["ynn_fusion.7"].self_us == 20  # another thread: not nested in the while
    only = pt.op_times(make_trace(), module="jit_step")
    assert "fusion.99" not in only


def test_busy_time_is_the_union_of_op_intervals():
    assert pt.busy_us([X("a", 0, 10), X("b", 5, 10), X("c", 30, 1)]) == 16
    assert pt.busy_us([]) == 0
    events = pt.op_events(make_trace(), module="jit_step")
    assert pt.busy_us(events) == pytest.approx(2 * 100)  # ynn_fusion.7 inside the while's span


def test_find_and_load_trace(tmp_path):
    old = tmp_path / "plugins" / "profile" / "2026_01_01_00_00_00"
    new = tmp_path / "plugins" / "profile" / "2026_01_01_00_00_09"
    for d in (old, new):
        d.mkdir(parents=True)
    with gzip.open(old / "host.trace.json.gz", "wt") as f:
        json.dump({"traceEvents": []}, f)
    before = pt.profile_runs(str(tmp_path))
    with gzip.open(new / "host.trace.json.gz", "wt") as f:
        json.dump(make_trace(), f)
    with gzip.open(new / "perfetto_trace.json.gz", "wt") as f:
        json.dump(make_trace(), f)
    before.discard(str(new))  # `new` "appeared" after the snapshot
    path = pt.find_trace_file(str(tmp_path), exclude=before)
    assert os.path.basename(path) == "perfetto_trace.json.gz"  # the Perfetto file first
    assert len(pt.load_trace(path)["traceEvents"]) == len(make_trace()["traceEvents"])
    with pytest.raises(FileNotFoundError):
        pt.find_trace_file(str(tmp_path / "nothing"))
