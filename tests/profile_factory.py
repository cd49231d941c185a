"""A hand-made JAX profiler trace and compiled HLO text with known answers, for the tests of
experiments.profile_trace, experiments.hlo_labels and experiments.profile_summary."""

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
