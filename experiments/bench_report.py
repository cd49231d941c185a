"""The benchmark's markdown report: figures in, ``results/performance.md``-style text out.

Pure functions over the measurements (``bench_measure``'s result dicts) and the run's
settings (``bench.Options``); nothing here measures. Only generated text lives here: the
hand-written reading of the figures is a file in results/ (``--notes_file``), copied in under
"Analysis".
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shlex
import statistics
from typing import TYPE_CHECKING, Any, Sequence

from experiments import bench_devices, bench_machine, bench_measure
from stylenet_jax.config import ModelConfig, OptimConfig

if TYPE_CHECKING:
    from experiments.bench import Options

SATURATION = 0.9  # "saturated": within 90% of the best measured throughput


@dataclasses.dataclass(frozen=True)
class Results:
    """What one benchmark run measured: ``train[batch][framework]`` and
    ``infer[framework]`` result dicts, ``env`` (device, versions, pinning, gathered from the
    results), where (``device``, ``device_note``), whether PyTorch ran (``torch_note`` says
    why not), when (``started``, ``elapsed_s``) and the load averages before and after."""

    device: str
    device_note: str
    with_torch: bool
    torch_note: str
    train: dict[int, dict[str, Any]]
    infer: dict[str, Any]
    env: dict[str, Any]
    started: str
    elapsed_s: float
    load: tuple[str, str]
    devices: dict[int, dict[int, Any]] = dataclasses.field(default_factory=dict)  # bench_devices


# ----------------------------------------------------------------------------- summaries


def summarize_times(result: dict[str, Any], rows: int, steps: int) -> dict[str, float] | None:
    """Median/min/max seconds per call and time steps per second, compile (first - median)."""
    times = result.get("times_s")
    if not times:
        return None
    med, lo, hi = statistics.median(times), min(times), max(times)
    work = rows * steps
    return {"s": med, "s_min": lo, "s_max": hi, "sps": work / med, "sps_min": work / hi,
            "sps_max": work / lo, "first_s": result["first_s"],
            "compile_s": result["first_s"] - med}


def saturation(points: Sequence[tuple[int, float]]) -> str:
    """Where throughput (batch, steps/s) saturates: the smallest batch within
    ``SATURATION`` of the best measured."""
    points = sorted(p for p in points if p[1] is not None)
    if not points:
        return "no data"
    if len(points) == 1:
        return f"one batch size only ({points[0][0]}): no sweep"
    best_b, best = max(points, key=lambda p: p[1])
    first = next(b for b, v in points if v >= SATURATION * best)
    largest = points[-1][0]
    if first == points[0][0] and best_b == first:
        return (f"already at its best at the smallest batch, {first} windows "
                f"({best:,.0f} steps/s); larger batches do not raise it")
    if first == largest:
        return (f"not saturated within the sweep: still rising at {largest} windows "
                f"({best:,.0f} steps/s)")
    return (f"saturates at about {first} windows: {first} reaches "
            f"{dict(points)[first] / best:.0%} of the best measured ({best:,.0f} steps/s "
            f"at {best_b})")


def format_sps(s: dict[str, float]) -> str:
    """Steps per second, median (min-max)."""
    return f"{s['sps']:,.0f} ({s['sps_min']:,.0f}-{s['sps_max']:,.0f})"


def _fmt_s(x: float) -> str:
    return f"{x * 1e3:.1f} ms" if x < 1.0 else f"{x:.2f} s"


def _fmt_mem(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:,.0f} MiB"


def _cell(result: dict[str, Any] | None, summary: dict[str, float] | None, what: str) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return f"failed: {result['error']}" if what == "sps" else "-"
    if summary is None:
        return "-"
    return {"sps": lambda: format_sps(summary),
            "step": lambda: (f"{_fmt_s(summary['s'])} ({_fmt_s(summary['s_min'])}-"
                             f"{_fmt_s(summary['s_max'])})"),
            "compile": lambda: f"{summary['compile_s']:.2f} s",
            "mem": lambda: _fmt_mem(result.get("peak_bytes"))}[what]()


def _ratio(a: dict[str, float] | None, b: dict[str, float] | None) -> str:
    if not a or not b:
        return "-"
    return (f"{a['sps'] / b['sps']:.2f} ({a['sps_min'] / b['sps_max']:.2f}-"
            f"{a['sps_max'] / b['sps_min']:.2f})")


def _overloaded(load: tuple[str, str]) -> bool:
    try:
        return max(float(l.split(" / ")[0]) for l in load) > bench_machine.usable_cores()
    except ValueError:
        return False


# ----------------------------------------------------------------------------- setup text


def describe_network(model: ModelConfig) -> str:
    """The one-head network of ``model`` in words."""
    h, d = model.hidden_size, 2 if model.bidirectional else 1
    parts = [f"interpretation LSTM {model.input_size} -> {h}"] if model.use_interpretation_layer \
        else ["no interpretation layer"]
    parts.append(f"{model.num_layers} {'bidirectional' if d == 2 else 'unidirectional'} LSTM "
                 f"layers of {h}")
    parts.append(f"linear {d * h} -> {model.output_size}, sigmoid")
    return ", ".join(parts)


def describe_loss(optim: OptimConfig) -> str:
    cells = {"full": "every cell of real steps", "active": "the sounding cells of real steps "
             "(`--loss=active`)", "onset": "the onset cells of real steps (`--loss=onset`)"}
    clip = {"per_tensor": f"each tensor's gradient norm clipped to {optim.clip_norm:g} "
                          "separately (per weight/bias, per direction: the project's default "
                          "`--clip=per_tensor`)",
            "global": f"global gradient norm clipped to {optim.clip_norm:g}",
            "none": "no clipping"}[optim.clip]
    return f"MSE over {cells[optim.loss]}; {clip}; then Adam {optim.learning_rate:g}"


def describe_precision(model: ModelConfig, device: str) -> str:
    """``--precision`` (``ModelConfig.precision``) and what each framework runs with it."""
    if model.precision == "highest":
        text = ("`--precision=highest`: true fp32 in both frameworks (JAX precision "
                "'highest'; PyTorch `allow_tf32` off for matmuls and cuDNN), what reports "
                "before the shared config called `--precision=fp32`")
    else:
        flag = ("`--precision` unset (the config's default)" if model.precision is None
                else f"`--precision={model.precision}`")
        text = (f"{flag}: each framework's TF32 on GPUs that have it (JAX precision "
                f"{model.precision or 'None'}; PyTorch `allow_tf32` on for matmuls and cuDNN), "
                "what reports before the shared config called `--precision=tf32`")
    return text + (" (no effect on a CPU)." if device == "cpu" else ".")


def _setup(options: "Options", results: Results) -> list[str]:
    model, optim, device = options.model, options.optim, results.device
    env, lines = results.env, []
    add = lines.append
    mem = ("GPU: JAX `memory_stats()['peak_bytes_in_use']`, `torch.cuda.max_memory_allocated`"
           if device == "gpu" else
           "CPU: the peak RSS (VmHWM) of the process that ran the measurement, libraries and "
           "the framework's own footprint included")
    iso = ("each measurement in its own fresh process (`--isolate`)" if options.isolate else
           "all in one process (`--noisolate`): memory is that process's running peak")
    add(f"- Network: StyleNet with ONE style head, from the same `ModelConfig` as "
        f"`experiments.train`: {describe_network(model)}; fp32 parameters"
        + ("" if model.matmul_dtype == "float32" else ", bfloat16 matmul inputs (below)")
        + f"; dropout keep {model.keep_prob:g} in training (both frameworks).")
    add(f"- Training step: B windows x {options.window} steps x {model.input_size}, all windows "
        f"full; {describe_loss(optim)} (the `OptimConfig`).")
    add("- stylenet-jax: the project's `train_steps.init_state` / `train_steps.train_step` "
        "(what `experiments.train` runs, `optim.make_optimizer` inside), jitted once per "
        "config, state donated, batch a `batching.Batch` on the device.")
    add("- PyTorch: `experiments/torch_reference.py` (`TorchStyleNet.from_config`), `nn.LSTM` "
        "per layer" + (" (`--torch_fused_layers`: the head's layers in ONE nn.LSTM call)"
                       if options.torch_fused_layers else "")
        + " (cuDNN on a GPU), `torch.optim.Adam` (default implementation); the same "
        "trainable tensors as JAX (`bias_hh` frozen at 0). Eager, no `torch.compile`.")
    add(f"- JAX model options: `--unroll={model.unroll}` (`lax.scan` unroll of the LSTM time "
        f"loops), `--recurrence={model.recurrence}` ("
        + {"custom_vjp": "the project's hand-written LSTM backward pass",
           "autodiff": "JAX differentiates the LSTM's `lax.scan` itself"}[model.recurrence]
        + f"), `--matmul_dtype={model.matmul_dtype}`: the `ModelConfig` fields.")
    add(f"- Precision: {describe_precision(model, device)}")
    if model.matmul_dtype == "bfloat16":
        add("- `--matmul_dtype=bfloat16`: JAX rounds every matmul's inputs to bfloat16 and "
            "accumulates in float32; the LSTM state, gates, loss, gradients and Adam stay "
            "float32. PyTorch runs the forward pass under `torch.autocast("
            f"'{'cuda' if device == 'gpu' else 'cpu'}', dtype=torch.bfloat16)` (loss in "
            "float32, backward outside autocast, parameters and Adam float32).")
    add(f"- Timing: the first call (compile + run), {options.warmup} more untimed, then "
        f"{options.repeats} timed calls, each waited for (`block_until_ready`, "
        "`torch.cuda.synchronize`). Figures are the median (min-max) of the timed calls. "
        "Time steps per second = windows x window / seconds per step. Compile time = first "
        "call minus the steady-state median (for PyTorch: its first-call overhead).")
    add(f"- Memory: {mem}. Runs: {iso}.")
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    add("- Allocator: " + (f"`GLIBC_TUNABLES={tunables}` for every measurement, both "
                           "frameworks (`--huge_pages`)" if "hugetlb=1" in tunables else
                           "the platform's default malloc (`--nohuge_pages`, or not Linux)")
        + ".")
    if device == "cpu":
        add("- JAX and PyTorch ran one after the other, not at once, alternating per batch "
            "size, so slow drifts of a shared machine hit both (see the load averages "
            "above and the min-max ranges).")
    for note in options.note:
        add(f"- Note: {note}")
    if (device == "cpu" and results.with_torch and not options.cpu_threads
            and (env.get("torch_threads") or 1) > 1 and _overloaded(results.load)):
        add("- Warning: the load average exceeded the usable cores while PyTorch ran with "
            f"{env.get('torch_threads')} OpenMP threads, whose parallel regions wait for "
            "descheduled threads. Compare with `--cpu_threads=1`.")
    return lines


# ----------------------------------------------------------------------------- sections


def render_profile(options: "Options", results: Results) -> list[str]:
    """The "Where the time goes" section of ``--profile_dir`` (first batch size's JAX step)."""
    from experiments import profile_summary

    b = options.batch_sizes[0]
    result = results.train[b].get("jax") or {}
    lines = [f"## Where the time goes (JAX train step, {b} x {options.window})", ""]
    profile = result.get("profile")
    if "error" in result or not profile or "error" in profile:
        why = result.get("error") or (profile or {}).get("error") or "no profile came back"
        return lines + [f"Not profiled: {why}.", ""]
    summary = summarize_times(result, b, options.window)
    steps = profile["steps"]
    lines += [
        f"{steps} more steps traced with `jax.profiler.trace` after the timed ones; the trace: "
        f"`{profile.get('trace', '?')}` (open it in ui.perfetto.dev).", "",
        "- ms / step: the op's SELF time (its duration minus the XLA ops nested in it: a "
        "`while` loop's own time is its loop control, its body's ops are rows of their own), "
        f"summed over the trace, divided by {steps} steps. Calls / step: {options.window} = "
        "once per time step inside a scan. Share: of the measured step (the median above).",
        "- From: the op's `op_name` in the compiled HLO of the same jitted step, shortened "
        "(outer `jit(...)` and `closed_call` dropped, `jvp(X)` shown as X and the backward "
        "pass, `transpose(...)`, as `backward:`); where XLA left none (e.g. the YNNPACK matmul "
        "fusions `ynn_fusion.*`), what it computes and the loop it sits in. Matmuls with their "
        "operand shapes and dtypes. Source: the Python line JAX recorded for it.", ""]
    lines += profile_summary.markdown_lines(profile, summary["s"] if summary else None)
    return lines + [""]


def _machine(options: "Options", results: Results) -> list[str]:
    env, device, version = results.env, results.device, bench_machine.version
    rows = [f"| device | {device} ({results.device_note}) |",
            f"| CPU | {bench_machine.cpu_description()} |"]
    if env.get("jax_device"):
        rows.append(f"| JAX device | {env['jax_device']} |")
    if env.get("torch_device"):
        rows.append(f"| PyTorch device | {env['torch_device']} (intra-op threads: "
                    f"{env.get('torch_threads', '?')}) |")
    if device == "cpu":
        threads = (f"each measurement {env['pinned']} (`--cpu_threads`)" if env.get("pinned")
                   else "each framework its default (JAX: XLA pool over all usable cores)")
        rows.append(f"| CPU threads | {threads} |")
    rows.append(f"| Python | {platform.python_version()} ({platform.platform()}) |")
    dists = ("jax", "jaxlib", "flax", "optax", "numpy")
    rows += [f"| {d} | {version(d) or 'not installed'} |" for d in dists]
    rows += [f"| {d} | {version(d)} |" for d in ("jax-cuda13-plugin", "jax-cuda12-plugin")
             if version(d)]
    rows.append(f"| torch | {version('torch') or 'not installed'}"
                f"{'' if results.with_torch else ' (not measured: ' + results.torch_note + ')'} |")
    cuda = [f"{k}: {env[k]}" for k in ("jax_cuda_runtime", "jax_cudnn", "torch_cuda",
                                       "torch_cudnn") if env.get(k) is not None]
    rows.append(f"| CUDA / cuDNN | {', '.join(cuda) if cuda else 'none (CPU run)'} |")
    rows.append(f"| load average (1/5/15 min) | before {results.load[0]}; "
                f"after {results.load[1]} |")
    return ["## Machine and versions", "", "| what | value |", "|---|---|", *rows, ""]


def _training(options: "Options", results: Results) -> list[str]:
    train, with_torch, window = results.train, results.with_torch, options.window
    head = ["windows", "JAX steps/s", "JAX s/step", "JAX compile", "JAX peak memory"]
    if with_torch:
        head += ["PyTorch steps/s", "PyTorch s/step", "PyTorch first-call overhead",
                 "PyTorch peak memory", "JAX / PyTorch throughput"]
    lines = [f"## Training step (batch sweep, windows of {window} steps)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    jax_points, torch_points = [], []
    for b in options.batch_sizes:
        j, t = train[b].get("jax"), train[b].get("torch")
        js = summarize_times(j, b, window) if j else None
        ts = summarize_times(t, b, window) if t else None
        jax_points.append((b, js["sps"] if js else None))
        torch_points.append((b, ts["sps"] if ts else None))
        row = [f"{b} x {window}", _cell(j, js, "sps"), _cell(j, js, "step"),
               _cell(j, js, "compile"), _cell(j, js, "mem")]
        if with_torch:
            row += [_cell(t, ts, "sps"), _cell(t, ts, "step"), _cell(t, ts, "compile"),
                    _cell(t, ts, "mem"), _ratio(js, ts)]
        lines.append("| " + " | ".join(row) + " |")
    if with_torch:
        lines += ["", "Ratio > 1: JAX is faster. Its range pairs the extremes (JAX min / "
                  "PyTorch max to JAX max / PyTorch min)."]
    recompiles = [b for b in options.batch_sizes
                  if (train[b].get("jax") or {}).get("compiles", 1) > 1]
    if recompiles:
        lines += ["", f"Warning: the JAX train step compiled more than once at batch {recompiles}."]
    lines += ["", "## Throughput saturation", "",
              f"Saturated = the smallest batch within {SATURATION:.0%} of the best throughput "
              "measured.", "",
              f"- stylenet-jax: {saturation([p for p in jax_points if p[1]])}."]
    if with_torch:
        lines.append(f"- PyTorch: {saturation([p for p in torch_points if p[1]])}.")
    return lines + [""]


def _inference(options: "Options", results: Results) -> list[str]:
    steps = options.inference_steps
    lines = [f"## Inference (one piece: batch 1 x {steps} steps, forward only)", ""]
    if not steps:
        return lines + ["Skipped (`--inference_steps=0`).", ""]
    lines += ["No dropout, no gradient (JAX: `model.predict`, the project's one jitted "
              "forward pass; PyTorch: `eval()` under `torch.inference_mode()`). Steps/s = "
              "steps of the piece / seconds.", "",
              "| framework | steps/s | latency | compile / first-call overhead | peak memory |",
              "|---|---|---|---|---|"]
    frameworks = [("stylenet-jax", "jax")] + ([("PyTorch", "torch")] if results.with_torch
                                              else [])
    sums = {}
    for label, key in frameworks:
        r = results.infer.get(key)
        s = sums[key] = summarize_times(r, 1, steps) if r else None
        lines.append(f"| {label} | {_cell(r, s, 'sps')} | {_cell(r, s, 'step')} | "
                     f"{_cell(r, s, 'compile')} | {_cell(r, s, 'mem')} |")
    if results.with_torch:
        lines += ["", "JAX / PyTorch inference throughput: "
                  f"{_ratio(sums.get('jax'), sums.get('torch'))}."]
    return lines + [""]


def _schedule(options: "Options", device: str) -> list[str]:
    lines = ["## Full paper schedule (160 epochs on ../shared/data)", ""]
    seconds = options.epoch_seconds
    if seconds:
        hours = 160 * seconds / 3600
        lines.append(f"- Measured: {seconds:,.0f} s per epoch of a real `experiments.train` "
                     f"run with `experiments/configs/stylenet.flags` on this {device}"
                     + (f" ({options.epoch_note})" if options.epoch_note else "")
                     + " (given with `--epoch_seconds`).")
        lines.append(f"- PROJECTION, not a measured 160-epoch run: 160 x {seconds:,.0f} s = "
                     f"{hours:,.1f} h ({hours / 24:,.1f} days) of training on this {device}, "
                     "validation and checkpoints included as far as the measured epochs had "
                     "them.")
    else:
        lines.append(f"- Not measured on this {device}: pass `--epoch_seconds` (seconds per "
                     "epoch of a real `experiments.train` run) to record it and project 160 "
                     "epochs.")
    if device != "gpu" or not seconds:
        lines.append("- GPU: the 160-epoch wall time has not been measured on a GPU yet.")
    return lines + [""]


def render(options: "Options", argv: Sequence[str], results: Results, notes: str = "",
           notes_path: str = "") -> str:
    """The markdown report of ``results`` measured with ``options`` (``argv``: the command
    line, quoted into the report). ``notes``: hand-written markdown from ``notes_path``,
    copied under "Analysis"."""
    device = results.device
    lines = ["# Performance: stylenet-jax beside PyTorch", "",
             f"Written by `experiments/bench.py` on {results.started} in "
             f"{results.elapsed_s:.0f} s. Produced by:", "", "```bash",
             "python -m experiments.bench " + shlex.join(argv), "```", ""]
    lines += _machine(options, results)
    lines += ["## Setup", ""] + _setup(options, results) + [""]
    lines += _training(options, results) + bench_devices.render(options, results)
    if options.profile_dir:
        lines += render_profile(options, results)
    lines += _inference(options, results)
    lines += _schedule(options, device)
    if notes:
        lines += ["## Analysis", "", f"Hand-written, from `{notes_path}` (`--notes_file`); "
                  "everything above it is generated.", ""]
        lines += notes.rstrip("\n").splitlines() + [""]
    lines += ["## GPU", ""]
    if device == "gpu":
        lines.append("The tables above are GPU figures.")
    else:
        sizes = ", ".join(map(str, bench_measure.DEVICE_DEFAULTS["gpu"]["batch_sizes"]))
        lines.append("GPU figures: not measured; this session had no GPU. On a GPU machine "
                     "run `python -m experiments.bench --device=gpu` (sweeps "
                     f"{sizes} windows by default; add `--precision=highest` for true fp32 in "
                     "both frameworks and `--torch_fused_layers` for cuDNN's multi-layer "
                     "call).")
    return "\n".join(lines + [""])
