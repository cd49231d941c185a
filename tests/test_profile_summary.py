"""Tests of experiments/profile_summary.py on a hand-made trace and HLO text with known answers
(the end-to-end run through ``bench --profile_dir`` is in test_bench.py)."""

import gzip
import json
import os

import pytest

from experiments import profile_summary as ps

# A module in the shape of XLA:CPU's compiled text: a scan (while) whose body holds a YNNPACK
# matmul fusion without metadata (its fused computation's ROOT dot has none either), a loop
# fusion with its own op_name, and a fusion labelled only by an inner instruction; the debug
# tables at the end map stack_frame_id to file:line.
HLO = """HloModule jit_step, is_scheduled=true, entry_computation_layout={(f32[2,32]{1,0})->f32[2,32]{1,0}}

%fused_computation (param_0: f32[2,32], param_1: f32[32,128]) -> f32[2,128] {
  %param_0 = f32[2,32]{1,0} parameter(0)
  %param_1 = f32[32,128]{1,0} parameter(1)
  ROOT %dot.26 = f32[2,128]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_computation.7 (param_0.8: f32[], param_1.8: f32[176,128]) -> f32[6,4] {
  %param_1.8 = f32[176,128]{1,0} parameter(1)
  %square.10 = f32[176,128]{1,0} multiply(%param_1.8, %param_1.8), metadata={op_name="jit(step)/square" stack_frame_id=2}
  %param_0.8 = f32[] parameter(0)
  ROOT %reduce-window.12 = f32[6,4]{1,0} reduce-window(%square.10, %param_0.8), window={size=32x32}, to_apply=%add.1
}

%fused_computation.65 (param_0.1: f32[2,128]) -> f32[2,32] {
  %param_0.1 = f32[2,128]{1,0} parameter(0)
  ROOT %slice.1 = f32[2,32]{1,0} slice(%param_0.1), slice={[0:2], [0:32]}
}

%add.1 (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %add.2 = f32[] add(%x, %y)
}

%region_12.47 (arg_tuple.25: (s32[], f32[2,32], f32[32,128])) -> (s32[], f32[2,32], f32[32,128]) {
  %arg_tuple.25 = (s32[], f32[2,32]{1,0}, f32[32,128]{1,0}) parameter(0)
  %get-tuple-element.1 = f32[2,32]{1,0} get-tuple-element(%arg_tuple.25), index=1
  %get-tuple-element.2 = f32[32,128]{1,0} get-tuple-element(%arg_tuple.25), index=2
  %ynn_fusion = f32[2,128]{1,0} fusion(%get-tuple-element.1, %get-tuple-element.2), kind=kCustom, calls=%fused_computation, backend_config={"fusion_config":{"kind":"__ynn_fusion"}}
  %add_divide_fusion.5 = f32[2,32]{1,0} fusion(%ynn_fusion), kind=kLoop, calls=%fused_computation.65, metadata={op_name="jit(step)/jvp(Net)/lstm/while/body/closed_call/div" stack_frame_id=1}
  %get-tuple-element.0 = s32[] get-tuple-element(%arg_tuple.25), index=0
  ROOT %tuple.1 = (s32[], f32[2,32]{1,0}, f32[32,128]{1,0}) tuple(%get-tuple-element.0, %add_divide_fusion.5, %get-tuple-element.2)
}

%region_13.48 (arg_tuple.27: (s32[], f32[2,32], f32[32,128])) -> pred[] {
  %arg_tuple.27 = (s32[], f32[2,32]{1,0}, f32[32,128]{1,0}) parameter(0)
  %get-tuple-element.3 = s32[] get-tuple-element(%arg_tuple.27), index=0
  %constant.1 = s32[] constant(20)
  ROOT %compare.1 = pred[] compare(%get-tuple-element.3, %constant.1), direction=LT
}

ENTRY %main.106 (h: f32[2,32], w: f32[32,128], g: f32[176,128]) -> f32[2,32] {
  %h = f32[2,32]{1,0} parameter(0)
  %w = f32[32,128]{1,0} parameter(1)
  %g = f32[176,128]{1,0} parameter(2)
  %zero = f32[] constant(0)
  %ynn_fusion.7 = f32[6,4]{1,0} fusion(%zero, %g), kind=kCustom, calls=%fused_computation.7
  %c = s32[] constant(0)
  %tuple.228 = (s32[], f32[2,32]{1,0}, f32[32,128]{1,0}) tuple(%c, %h, %w)
  %while.175 = (s32[], f32[2,32]{1,0}, f32[32,128]{1,0}) while(%tuple.228), condition=%region_13.48, body=%region_12.47, metadata={op_name="jit(step)/jvp(Net)/lstm/while" stack_frame_id=1}, backend_config={"known_trip_count":{"n":"20"}}
  ROOT %get-tuple-element.9 = f32[2,32]{1,0} get-tuple-element(%while.175), index=1
}

FileNames
1 "/repo/stylenet_jax/model.py"
2 "/repo/stylenet_jax/training.py"

FunctionNames
1 "_recurrence_forward"
2 "clip_by_tensor_norm.<locals>.clip"

FileLocations
1 {file_name_id=1 function_name_id=1 line=184 end_line=184 column=1 end_column=9}
2 {file_name_id=2 function_name_id=2 line=161 end_line=161 column=1 end_column=9}

StackFrames
1 {file_location_id=1 parent_frame_id=1}
2 {file_location_id=2 parent_frame_id=1}
"""

PY, POOL = 1, 2  # thread ids


def X(name, ts, dur, tid=POOL, **args):  # noqa: N802 - a trace event, as in the format
    event = {"ph": "X", "pid": 7, "tid": tid, "ts": ts, "dur": dur, "name": name}
    if args:
        event["args"] = args
    return event


def make_trace():
    """Two steps. Per step: while.175 (100 us) runs 20 ynn_fusion (2 us) and 20
    add_divide_fusion.5 (1 us) inside a ThunkExecutor; ynn_fusion.7 (10 us) runs on another
    thread at the same time; runtime events around them."""
    events = [{"ph": "M", "pid": 7, "tid": PY, "name": "thread_name",
               "args": {"name": "python3"}}]
    for step in range(2):
        t0 = 1000.0 * step
        events += [X("$api.py:2479 block_until_ready", t0, 150, tid=PY),
                   X("PjitFunction(step)", t0, 20, tid=PY),
                   X("ThunkExecutor::Execute", t0 + 5, 140),
                   X("while.175", t0 + 10, 100, hlo_module="jit_step", hlo_op="while.175"),
                   X("ThunkExecutor::Execute", t0 + 11, 98),
                   X("ynn_fusion.7", t0 + 20, 10, tid=3, hlo_module="jit_step"),
                   X("SlinkyThreadPool::Run", t0 + 20, 5, tid=3),
                   X("ThreadpoolListener::Record", t0 + 21, 0, tid=3)]
        for i in range(20):
            t = t0 + 12 + 4 * i
            events += [X("ynn_fusion", t, 2, hlo_module="jit_step"),
                       X("end: ynn_fusion", t + 1.5, 0.2),
                       X("add_divide_fusion.5", t + 2.5, 1, hlo_module="jit_step")]
        events.append(X("fusion.99", t0 + 120, 5, hlo_module="jit_other"))  # another program
    events.append({"ph": "i", "name": "instant", "ts": 0})
    return {"displayTimeUnit": "ns", "traceEvents": events}


# ----------------------------------------------------------------------------- the trace


def test_runtime_events_are_not_ops():
    for name in ("ThunkExecutor::Execute", "ThunkExecutor::Execute (wait for completion)",
                 "PjitFunction(traced)", "$profiler.py:307 trace", "SlinkyThreadPool::Run",
                 "$api.py:2479 block_until_ready", "end: ynn_fusion.2", "ParseArguments",
                 "Wait for donation holds"):
        assert ps.is_runtime_event(name), name
    for name in ("ynn_fusion.2", "copy_bitcast_fusion", "while.3", "dot.10",
                 "bitcast_dynamic-update-slice_fusion.6"):
        assert not ps.is_runtime_event(name), name


def test_self_times_calls_and_nesting():
    times = ps.op_times(make_trace())
    assert set(times) == {"while.175", "ynn_fusion", "add_divide_fusion.5", "ynn_fusion.7",
                          "fusion.99"}  # no module filter: the other program's op too
    w = times["while.175"]
    assert w.calls == 2 and w.total_us == 200
    assert w.self_us == pytest.approx(2 * (100 - 20 * (2 + 1)))  # body ops taken off
    assert times["ynn_fusion"].calls == 40 and times["ynn_fusion"].self_us == pytest.approx(80)
    assert times["ynn_fusion.7"].self_us == 20  # another thread: not nested in the while
    only = ps.op_times(make_trace(), module="jit_step")
    assert "fusion.99" not in only


def test_busy_time_is_the_union_of_op_intervals():
    assert ps.busy_us([X("a", 0, 10), X("b", 5, 10), X("c", 30, 1)]) == 16
    assert ps.busy_us([]) == 0
    events = ps.op_events(make_trace(), module="jit_step")
    assert ps.busy_us(events) == pytest.approx(2 * 100)  # ynn_fusion.7 inside the while's span


def test_find_and_load_trace(tmp_path):
    old = tmp_path / "plugins" / "profile" / "2026_01_01_00_00_00"
    new = tmp_path / "plugins" / "profile" / "2026_01_01_00_00_09"
    for d in (old, new):
        d.mkdir(parents=True)
    with gzip.open(old / "host.trace.json.gz", "wt") as f:
        json.dump({"traceEvents": []}, f)
    before = ps.profile_runs(str(tmp_path))
    with gzip.open(new / "host.trace.json.gz", "wt") as f:
        json.dump(make_trace(), f)
    with gzip.open(new / "perfetto_trace.json.gz", "wt") as f:
        json.dump(make_trace(), f)
    before.discard(str(new))  # `new` "appeared" after the snapshot
    path = ps.find_trace_file(str(tmp_path), exclude=before)
    assert os.path.basename(path) == "perfetto_trace.json.gz"  # the Perfetto file first
    assert len(ps.load_trace(path)["traceEvents"]) == len(make_trace()["traceEvents"])
    with pytest.raises(FileNotFoundError):
        ps.find_trace_file(str(tmp_path / "nothing"))


# ----------------------------------------------------------------------------- the HLO


def test_shorten_op_name():
    assert (ps.shorten_op_name("jit(step)/while/body/closed_call/dnh,dhk->dnk/dot_general")
            == "while/body/dnh,dhk->dnk dot_general")
    assert (ps.shorten_op_name("jit(traced)/transpose(jvp(StyleNet))/vmap(heads)/layer_0/while"
                               "/body/closed_call/mul")
            == "backward: StyleNet/vmap(heads)/layer_0/while/body mul")
    assert ps.shorten_op_name("jit(traced)/jvp(StyleNet)/lt") == "StyleNet lt"
    assert ps.shorten_op_name("jit(traced)/mul") == "mul"
    assert ps.shorten_op_name("reduce_sum") == "reduce_sum"


def test_parse_hlo():
    module = ps.parse_hlo(HLO)
    assert module.name == "jit_step"
    w = module.instructions["while.175"]
    assert w.opcode == "while" and w.computation == "main.106"
    assert w.op_name == "jit(step)/jvp(Net)/lstm/while" and w.stack_frame == 1
    assert set(w.called) == {"region_12.47", "region_13.48"}
    assert module.bodies == {"region_12.47"}
    assert module.callers["fused_computation"] == "ynn_fusion"
    assert module.roots["fused_computation"] == "dot.26"
    dot = module.instructions["dot.26"]
    assert dot.shape == "f32[2,128]" and dot.operands == ["param_0", "param_1"]
    assert module.instructions["tuple.228"].shape == "(s32[], f32[2,32], f32[32,128])"
    assert module.frames == {1: "model.py:184 _recurrence_forward",
                             2: "training.py:161 clip_by_tensor_norm.clip"}


def test_labels():
    labels = ps.hlo_labels(HLO, ["while.175", "ynn_fusion", "add_divide_fusion.5",
                                 "ynn_fusion.7", "nope"])
    assert labels["while.175"] == ps.Label("Net/lstm while", "model.py:184 _recurrence_forward")
    # No metadata anywhere: what it computes, the loop it sits in (and that loop's source).
    assert labels["ynn_fusion"] == ps.Label(
        "dot, no op_name, in Net/lstm while body", "model.py:184 _recurrence_forward",
        "f32[2,32] x f32[32,128] -> f32[2,128]")
    assert labels["add_divide_fusion.5"].origin == "Net/lstm/while/body div"
    assert labels["ynn_fusion.7"] == ps.Label(
        "square", "training.py:161 clip_by_tensor_norm.clip", "fusion computing reduce-window")
    assert labels["nope"].origin == "?"


# ----------------------------------------------------------------------------- the summary


def test_summarize_known_answers():
    s = ps.summarize(make_trace(), steps=2, hlo_text=HLO, top=3)
    assert [r["name"] for r in s["ops"]] == ["while.175", "ynn_fusion", "add_divide_fusion.5"]
    w, y, a = s["ops"]
    assert w["ms"] == pytest.approx(0.040) and w["total_ms"] == pytest.approx(0.100)
    assert w["calls"] == 1 and w["opcode"] == "while"
    assert y["ms"] == pytest.approx(0.040) and y["calls"] == 20
    assert a["ms"] == pytest.approx(0.020) and a["origin"] == "Net/lstm/while/body div"
    assert s["listed_ms"] == pytest.approx(0.100)
    assert s["op_count"] == 4  # fusion.99 is not in this HLO module
    assert s["all_ms"] == pytest.approx(0.110)  # + ynn_fusion.7's 10 us
    assert s["busy_ms"] == pytest.approx(0.100)
    assert [r["name"] for r in s["loops"]] == ["while.175"]
    json.dumps(s)  # travels from a worker process as JSON
    with pytest.raises(ValueError):
        ps.summarize(make_trace(), steps=0)


def test_summarize_without_hlo_uses_the_trace_alone():
    s = ps.summarize(make_trace(), steps=2)
    assert s["ops"][0]["name"] == "while.175" and s["ops"][0]["origin"] == ""
    assert s["op_count"] == 5 and not s["labelled"]


def test_markdown():
    s = ps.summarize(make_trace(), steps=2, hlo_text=HLO, top=3)
    text = "\n".join(ps.markdown_lines(s, step_s=200e-6))
    assert ("| `ynn_fusion` | dot, no op_name, in Net/lstm while body: f32[2,32] x f32[32,128] "
            "-> f32[2,128] | model.py:184 _recurrence_forward | 0.040 | 20 | 20.0% |") in text
    assert "| `while.175` | Net/lstm while | model.py:184 _recurrence_forward | 0.040 | 1 |" in text
    assert "- These 3 ops: 0.100 ms per step, 50% of the measured step (0.200 ms" in text
    assert "- All 4 XLA ops seen: 0.110 ms per step, 55% of the measured step" in text
    assert "| `while.175` | Net/lstm while | 0.100 | 0.040 | 1 |" in text  # the loops table
    assert "traced steps" not in text  # no traced_s: busy time alone
    assert "- Some XLA op was running during 0.100 ms of each traced step." in text
    s["traced_s"] = [400e-6, 300e-6, 500e-6]
    text = "\n".join(ps.markdown_lines(s, step_s=200e-6))
    assert ("- The traced steps took 0.300, 0.400, 0.500 ms (profiler on); some XLA op was "
            "running during 0.100 ms of each, 25% of the median traced step") in text
    assert "slower than the timed ones" in text  # 0.4 ms traced vs 0.2 ms timed
    text = "\n".join(ps.markdown_lines(s, None))
    assert "of the measured step" not in text and "| 20 | - |" in text
