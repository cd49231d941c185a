"""Where a jitted step's time goes: a JAX profiler trace summed per XLA op
(``experiments.profile_trace``), each op labelled with the JAX operation it came from
(``experiments.hlo_labels``), as a JSON-serialisable summary per step (``summarize``) and as
markdown (``markdown_lines``).

Used by ``experiments/bench.py --profile_dir`` (measured in ``bench_measure``, rendered in
``bench_report``). Times in a trace are microseconds; the summary's are milliseconds per step.
"""

from __future__ import annotations

from typing import Any, Mapping

from experiments.hlo_labels import Label, label_instruction, parse_hlo
from experiments.profile_trace import OpTime, busy_us, op_events, op_times

LOOP_OPCODES = ("while", "call", "conditional")


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
    """Milliseconds with 3 decimals below 1, 2 below 100, else none (thousands separated)."""
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def _calls(x: float) -> str:
    """Calls per step: whole numbers as such, else 2 decimals."""
    return f"{x:g}" if x == int(x) else f"{x:.2f}"


def _cell(text: str) -> str:
    """A markdown table cell: ``|`` escaped, empty shown as ``-``."""
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
