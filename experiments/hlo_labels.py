"""Compiled HLO text read into instructions, and each XLA op labelled with the JAX operation
it came from.

* ``parse_hlo``: the compiled HLO text (``jitted.lower(*args).compile().as_text()``) read into
  an ``HloModule``: its computations' instructions (opcode, shape, operands, ``op_name``
  metadata, stack frame, called computations) and the module's debug tables;
* ``label_instruction`` / ``hlo_labels``: each instruction's ``Label``: its
  ``metadata={op_name="..."}`` shortened by ``shorten_op_name`` (for a fusion without its own
  metadata, its fused computation's root's), the source line JAX recorded (``stack_frame_id``),
  and the operand shapes of a matmul.

Pure functions over text. The trace's op times are ``experiments.profile_trace``; putting the
two together is ``experiments.profile_summary``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Sequence


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
