"""Where a jitted step's time goes: a JAX profiler trace summed per XLA op, each op labelled
with the JAX operation it came from.

Pure functions over plain data, used by ``experiments/bench.py --profile_dir``:

* ``load_trace`` / ``find_trace_file``: the Chrome/Perfetto JSON trace that
  ``jax.profiler.trace(dir, create_perfetto_trace=True)`` writes
  (``dir/plugins/profile/<run>/perfetto_trace.json.gz``);
* ``op_times``: per XLA op (complete events, ``ph == "X"``), its total SELF time (its duration
  minus the XLA ops nested in it on the same thread: a ``while`` loop's self time is its loop
  control, its body's ops are counted as themselves) and its number of calls; runtime wrapper
  events (``ThunkExecutor::Execute``, ``PjitFunction(...)``, Python frames ``$file:line fn``,
  thread-pool bookkeeping, ``end: op`` completion markers) are left out;
* ``parse_hlo`` / ``hlo_labels``: the compiled HLO text (``jitted.lower(*args).compile()
  .as_text()``) read into instructions, and each instruction's label: its
  ``metadata={op_name="..."}`` shortened by ``shorten_op_name`` (for a fusion without its own
  metadata, its fused computation's root's), the source line JAX recorded (``stack_frame_id``),
  and the operand shapes of a matmul;
* ``summarize`` puts them together; ``markdown_lines`` renders the result.

Times in a trace are microseconds; the summary's are milliseconds per step.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import os
import re
from typing import Any, Container, Iterable, Mapping, Sequence

# Runtime wrapper events, not XLA ops (exact names or prefixes).
RUNTIME_PREFIXES = ("ThunkExecutor", "PjitFunction", "$", "SlinkyThreadPool", "ThreadpoolListener",
                    "CommonPjRt", "PjRt", "end: ", "Wait for", "Handle input", "ParseArguments",
                    "AllocateOutputBuffers", "PythonRefManager")
# An HLO instruction's name: what an XLA op's event is called (``ynn_fusion.2``, ``while.3``).
_HLO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
LOOP_OPCODES = ("while", "call", "conditional")
_EPS_US = 1e-3  # rounding of ts/dur in a trace (microseconds)


def is_runtime_event(name: str) -> bool:
    """True for the runtime's own events (executors, dispatch, Python frames, thread pools,
    ``block_until_ready``), which wrap or accompany XLA ops but are not ops."""
    return (name.startswith(RUNTIME_PREFIXES) or "block_until_ready" in name
            or not _HLO_NAME.fullmatch(name))


# ----------------------------------------------------------------------------- the trace


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


# ----------------------------------------------------------------------------- the HLO


@dataclasses.dataclass
class HloInstruction:
    """One instruction of an HLO module's text."""

    name: str
    computation: str
    opcode: str
    shape: str
    operands: list[str]
    op_name: str = ""
    stack_frame: int | None = None
    called: list[str] = dataclasses.field(default_factory=list)  # computations it calls
    is_root: bool = False


@dataclasses.dataclass
class HloModule:
    """The parts of an HLO module's text that labelling needs."""

    name: str
    instructions: dict[str, HloInstruction]
    roots: dict[str, str]  # computation -> its ROOT instruction
    callers: dict[str, str]  # computation -> the instruction that calls it
    bodies: set[str]  # computations that are a while loop's body
    frames: dict[int, str]  # stack_frame_id -> "file.py:line function"


_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([^\s(]+)\s*\(.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s+(ROOT\s+)?%([^\s=]+)\s*=\s*(.*)$")
_OP_NAME = re.compile(r'op_name="((?:[^"\\]|\\.)*)"')
_FRAME_ID = re.compile(r"stack_frame_id=(\d+)")
_CALLS = re.compile(r"\b(calls|to_apply|body|condition|true_computation|false_computation)"
                    r"=%([^\s,)}]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")


def _split_shape(rest: str) -> tuple[str, str]:
    """``'f32[2]{0} add(%a, %b), ...'`` -> (shape, the text from the opcode on)."""
    if rest.startswith("("):  # a tuple shape: balanced parentheses
        depth = 0
        for i, ch in enumerate(rest):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                return rest[:i + 1], rest[i + 1:].lstrip()
        return rest, ""
    shape, _, tail = rest.partition(" ")
    return shape, tail


def _operands(text: str) -> list[str]:
    """Names in the opcode's own parentheses: ``add(%a, %b), x=%c`` -> [a, b]."""
    start = text.find("(")
    if start < 0:
        return []
    depth = 0
    for i in range(start, len(text)):
        depth += text[i] == "("
        depth -= text[i] == ")"
        if depth == 0:
            return re.findall(r"%([^\s,()]+)", text[start:i + 1])
    return re.findall(r"%([^\s,()]+)", text[start:])


def _frames(lines: Sequence[str]) -> dict[int, str]:
    """The module's debug tables: stack_frame_id -> "file.py:line function" (innermost)."""
    tables: dict[str, dict[int, str]] = {}
    current = None
    for line in lines:
        if line in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
            current = tables.setdefault(line, {})
            continue
        m = re.match(r"^(\d+)\s+(.*)$", line)
        if current is None or not m:
            if not line.strip():
                current = None
            continue
        current[int(m.group(1))] = m.group(2).strip()
    files = {k: os.path.basename(v.strip('"')) for k, v in tables.get("FileNames", {}).items()}
    functions = {k: v.strip('"') for k, v in tables.get("FunctionNames", {}).items()}
    locations = {}
    for k, v in tables.get("FileLocations", {}).items():
        f = re.search(r"file_name_id=(\d+)", v)
        fn = re.search(r"function_name_id=(\d+)", v)
        ln = re.search(r"\bline=(\d+)", v)
        if f and fn and ln:
            name = functions.get(int(fn.group(1)), "?").replace(".<locals>", "")
            locations[k] = f"{files.get(int(f.group(1)), '?')}:{ln.group(1)} {name}"
    frames = {}
    for k, v in tables.get("StackFrames", {}).items():
        loc = re.search(r"file_location_id=(\d+)", v)
        if loc and int(loc.group(1)) in locations:
            frames[k] = locations[int(loc.group(1))]
    return frames


def parse_hlo(text: str) -> HloModule:
    """Reads an HLO module's text (``compiled.as_text()``): its computations' instructions
    with opcode, shape, operands, ``op_name`` metadata, stack frame and called computations."""
    lines = text.splitlines()
    header = re.match(r"^HloModule\s+([^\s,]+)", text)
    instructions: dict[str, HloInstruction] = {}
    roots: dict[str, str] = {}
    callers: dict[str, str] = {}
    bodies: set[str] = set()
    computation = ""
    for line in lines:
        m = _COMPUTATION.match(line)
        if m and not line.startswith((" ", "\t")):
            computation = m.group(1).lstrip("%")
            continue
        m = _INSTRUCTION.match(line)
        if not m or not computation:
            continue
        is_root, name, rest = bool(m.group(1)), m.group(2), m.group(3)
        shape, tail = _split_shape(rest)
        opcode = re.match(r"([\w\-]+)", tail)
        op_name = _OP_NAME.search(tail)
        frame = _FRAME_ID.search(tail)
        inst = HloInstruction(
            name=name, computation=computation, opcode=opcode.group(1) if opcode else "?",
            shape=re.sub(r"\{[^{}]*\}", "", shape), operands=_operands(tail),
            op_name=op_name.group(1).replace('\\"', '"') if op_name else "",
            stack_frame=int(frame.group(1)) if frame else None, is_root=is_root)
        for kind, called in _CALLS.findall(tail):
            inst.called.append(called)
            callers.setdefault(called, name)
            if kind == "body":
                bodies.add(called)
        for group in _BRANCHES.findall(tail):
            for called in re.findall(r"%([^\s,}]+)", group):
                inst.called.append(called)
                callers.setdefault(called, name)
        instructions[name] = inst
        if is_root:
            roots[computation] = name
    return HloModule(header.group(1) if header else "", instructions, roots, callers, bodies,
                     _frames(lines))


def shorten_op_name(op_name: str) -> str:
    """A JAX ``op_name`` made readable: the outermost ``jit(...)`` and ``closed_call``
    levels dropped, ``jvp(X)`` read as ``X``, a ``transpose(...)`` (the backward pass) as a
    ``backward:`` prefix, and the primitive set off by a space.

    ``jit(step)/while/body/closed_call/dnh,dhk->dnk/dot_general`` ->
    ``while/body/dnh,dhk->dnk dot_general``;
    ``jit(f)/transpose(jvp(StyleNet))/layer_0/while/body/mul`` ->
    ``backward: StyleNet/layer_0/while/body mul``.
    """
    parts = [p for p in op_name.split("/") if p]
    if len(parts) > 1 and re.fullmatch(r"(pjit|jit)\(.*\)", parts[0]):
        parts = parts[1:]
    backward, out = False, []
    for p in parts:
        if p in ("closed_call", "core_call"):
            continue
        m = re.fullmatch(r"transpose\((.*)\)", p)
        if m:
            backward, p = True, m.group(1)
        m = re.fullmatch(r"jvp\((.*)\)", p)
        if m:
            p = m.group(1)
        out.append(p)
    if not out:
        return op_name
    text = out[0] if len(out) == 1 else "/".join(out[:-1]) + " " + out[-1]
    return ("backward: " if backward else "") + text


@dataclasses.dataclass(frozen=True)
class Label:
    """What an XLA op came from: ``origin`` (the shortened op_name, or a description when the
    compiler left none), ``source`` ("file.py:line function" or ""), ``detail`` (a matmul's
    operand shapes, else "")."""

    origin: str
    source: str = ""
    detail: str = ""


def _metadata_inst(module: HloModule, inst: HloInstruction) -> HloInstruction | None:
    """The instruction whose metadata speaks for ``inst``: itself, else (a fusion) its fused
    computation's root, else the first instruction in that computation with an op_name."""
    if inst.op_name:
        return inst
    for comp in inst.called if inst.opcode == "fusion" else ():
        root = module.instructions.get(module.roots.get(comp, ""))
        if root is not None and root.op_name:
            return root
        for other in module.instructions.values():
            if other.computation == comp and other.op_name:
                return other
    return None


def _compute_inst(module: HloModule, inst: HloInstruction) -> HloInstruction:
    """A fusion's root (what it computes); otherwise the instruction itself."""
    if inst.opcode == "fusion" and inst.called:
        root = module.instructions.get(module.roots.get(inst.called[0], ""))
        if root is not None:
            return _compute_inst(module, root)
    return inst


def _enclosing(module: HloModule, inst: HloInstruction) -> tuple[HloInstruction, bool] | None:
    """The nearest loop or call (not a fusion) with an op_name that ``inst`` runs inside, and
    whether ``inst`` is in its body (a while loop's body rather than its condition)."""
    comp, seen = inst.computation, set()
    while comp in module.callers and comp not in seen:
        seen.add(comp)
        caller = module.instructions[module.callers[comp]]
        if caller.opcode != "fusion" and caller.op_name:
            return caller, comp in module.bodies
        comp = caller.computation
    return None


def label_instruction(module: HloModule, name: str) -> Label:
    """The label of instruction ``name`` of ``module`` (see ``Label``)."""
    inst = module.instructions.get(name)
    if inst is None:
        return Label("?")
    meta = _metadata_inst(module, inst)
    computed = _compute_inst(module, inst)
    details = []
    if computed.opcode in ("dot", "convolution"):
        shapes = [module.instructions[o].shape for o in computed.operands
                  if o in module.instructions]
        details.append(" x ".join(shapes) + f" -> {computed.shape}")
    frame = None
    if meta is not None:
        origin, frame = shorten_op_name(meta.op_name), meta.stack_frame
        if meta is not inst and meta is not computed:  # a fusion labelled by an inner op
            details.append(f"fusion computing {computed.opcode}")
    else:
        outer = _enclosing(module, inst)
        origin = f"{computed.opcode}, no op_name"
        if outer is not None:
            origin += f", in {shorten_op_name(outer[0].op_name)}{' body' if outer[1] else ''}"
            frame = outer[0].stack_frame
    frame = frame if frame is not None else inst.stack_frame
    return Label(origin, module.frames.get(frame, "") if frame is not None else "",
                 "; ".join(details))


def hlo_labels(hlo_text: str, names: Iterable[str] | None = None) -> dict[str, Label]:
    """Labels of the instructions ``names`` (default: all) of the HLO module ``hlo_text``."""
    module = parse_hlo(hlo_text)
    return {n: label_instruction(module, n) for n in (module.instructions if names is None
                                                      else names)}


# ----------------------------------------------------------------------------- the summary


def summarize(trace: Mapping[str, Any], steps: int, hlo_text: str | None = None,
              top: int = 15, top_loops: int = 8) -> dict[str, Any]:
    """The profile of ``steps`` traced calls of one jitted step, JSON-serialisable.

    ``ops``: the ``top`` XLA ops by self time, each ``{name, ms, calls, total_ms, opcode,
    origin, source, detail}`` (ms and calls per step); ``loops``: the ``top_loops`` loops and
    calls (``while``/``call``/``conditional``) by total time, body included; ``all_ms``: self
    time of every XLA op per step (summed over threads); ``listed_ms``: of the listed ops;
    ``busy_ms``: per step, the wall time during which some XLA op ran (on any thread);
    ``op_count``: distinct XLA ops seen. With ``hlo_text`` (the same jitted step's compiled
    HLO), only its instructions count as ops and each is labelled."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    module = parse_hlo(hlo_text) if hlo_text else None
    names = set(module.instructions) if module else None
    module_name = (module.name or None) if module else None
    times = op_times(trace, names, module_name)

    def row(t: OpTime) -> dict[str, Any]:
        inst = module.instructions.get(t.name) if module else None
        label = label_instruction(module, t.name) if inst else Label("")
        return {"name": t.name, "ms": t.self_us / steps / 1e3, "calls": t.calls / steps,
                "total_ms": t.total_us / steps / 1e3,
                "opcode": inst.opcode if inst else t.name.split(".")[0],
                "origin": label.origin, "source": label.source, "detail": label.detail}

    ranked = sorted(times.values(), key=lambda t: (-t.self_us, t.name))
    ops = [row(t) for t in ranked[:top]]
    loops = [row(t) for t in sorted(times.values(), key=lambda t: (-t.total_us, t.name))
             if row(t)["opcode"] in LOOP_OPCODES][:top_loops]
    return {"steps": steps, "ops": ops, "loops": loops, "op_count": len(times),
            "all_ms": sum(t.self_us for t in times.values()) / steps / 1e3,
            "listed_ms": sum(r["ms"] for r in ops),
            "busy_ms": busy_us(op_events(trace, names, module_name)) / steps / 1e3,
            "labelled": module is not None}


def _ms(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def _calls(x: float) -> str:
    return f"{x:g}" if x == int(x) else f"{x:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "-"


def markdown_lines(summary: Mapping[str, Any], step_s: float | None) -> list[str]:
    """The summary as markdown (no heading): the top ops table, the totals (listed ops and all
    ops beside the measured step time ``step_s``, seconds or None; busy time beside the traced
    steps' ``summary['traced_s']`` when there), and the loops table."""
    step_ms = step_s * 1e3 if step_s else None
    share = (lambda ms: f"{ms / step_ms:.1%}") if step_ms else (lambda ms: "-")
    lines = ["| XLA op | from (JAX op_name) | source | ms / step | calls / step | share of step |",
             "|---|---|---|---|---|---|"]
    for r in summary["ops"]:
        origin = r["origin"] + (f": {r['detail']}" if r.get("detail") else "")
        lines.append(f"| `{r['name']}` | {_cell(origin)} | {_cell(r.get('source', ''))} | "
                     f"{_ms(r['ms'])} | {_calls(r['calls'])} | {share(r['ms'])} |")
    lines.append("")
    listed, every, busy = summary["listed_ms"], summary["all_ms"], summary.get("busy_ms")
    of_step = (lambda ms: f", {ms / step_ms:.0%} of the measured step") if step_ms else (
        lambda ms: "")
    lines.append(f"- These {len(summary['ops'])} ops: {_ms(listed)} ms per step{of_step(listed)}"
                 + (f" ({_ms(step_ms)} ms, the median above)." if step_ms else "."))
    lines.append(f"- All {summary['op_count']} XLA ops seen: {_ms(every)} ms per step"
                 f"{of_step(every)}, summed over the threads they ran on (XLA:CPU runs "
                 "independent ops on several threads at once).")
    traced = sorted(summary.get("traced_s") or [])
    if busy is not None and traced:
        median = traced[len(traced) // 2] * 1e3
        lines.append(f"- The traced steps took {', '.join(_ms(t * 1e3) for t in traced)} ms "
                     "(profiler on); some XLA op was running during "
                     f"{_ms(busy)} ms of each, {busy / median:.0%} of the median traced step, "
                     "the rest being dispatch, waiting and the profiler's own work.")
    elif busy is not None:
        lines.append(f"- Some XLA op was running during {_ms(busy)} ms of each traced step.")
    if step_ms and traced and traced[len(traced) // 2] * 1e3 > 1.2 * step_ms:
        lines.append("- The traced steps were slower than the timed ones (the profiler's "
                     "overhead, or other load), so the shares above can add up to more than "
                     "the whole step; compare ops with each other.")
    if summary.get("loops"):
        lines.append("")
        lines.append("Loops (`while`: a `lax.scan` or `fori_loop`; `call`: a small outlined "
                     "call), by total time, everything they ran included:")
        lines.append("")
        lines.append("| XLA op | from (JAX op_name) | ms / step, total | of which its own "
                     "| calls / step |")
        lines.append("|---|---|---|---|---|")
        for r in summary["loops"]:
            lines.append(f"| `{r['name']}` | {_cell(r['origin'])} | {_ms(r['total_ms'])} | "
                         f"{_ms(r['ms'])} | {_calls(r['calls'])} |")
    return lines
