r"""Benchmark: stylenet-jax's training step and inference beside the same network in PyTorch.

    python -m experiments.bench                          # auto device, writes results/performance.md
    python -m experiments.bench --device=cpu --batch_sizes=8,32 --repeats=5
    python -m experiments.bench --skip_torch --out=/tmp/perf.md
    python -m experiments.bench --matmul_dtype=bfloat16 --recurrence=autodiff --unroll=2
    python -m experiments.bench --profile_dir=/tmp/prof  # + where the JAX step's time goes

Flags may also come from a file (``--flagfile=FILE``, one flag a line); ``--help`` lists them.

What is measured, in ONE run on one machine (the paper's architecture with ONE style head:
interpretation LSTM 176 -> 3 bidirectional LSTM layers of 176 -> linear 88 -> sigmoid; batches
of B windows of 200 steps, fp32; MSE over real steps; clipping then Adam 1e-3; dropout keep 0.8
in both):

1. stylenet-jax's jitted train step, built with the project's own ``optim.make_optimizer``,
   ``training.make_train_step`` and ``init_state`` (what ``experiments.train`` runs), on a
   ``batching.Batch`` of random data;
2. ``experiments.torch_reference.TorchStyleNet`` (``nn.LSTM``, cuDNN on a GPU) with the same
   shapes, loss, clipping and ``torch.optim.Adam``.

For each: time steps per second (= B x window / seconds per step), the median (and min-max) of
``--repeats`` timed steps after the first (compiling) call and ``--warmup`` more untimed ones,
each timed to completion (``block_until_ready`` / ``torch.cuda.synchronize``); compile time
(first call minus the steady-state median); peak memory (GPU: the allocators' peaks; CPU: the
process's peak RSS). The same for inference: one piece of ``--inference_steps`` steps, batch
1, forward only. The batch sweep reports where throughput saturates.

By default every measurement runs in a fresh subprocess (``--isolate``; ``--noisolate`` runs
all in this process), so peak memory belongs to that measurement alone and JAX and PyTorch
never share a process or an allocator. ``--profile_dir`` traces the first batch size's JAX
train step with ``jax.profiler`` and reports its top XLA ops (``experiments/profile_summary.py``).
PyTorch is optional (``requirements-bench.txt``): without it the script says so and measures
JAX only.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `python experiments/bench.py` and the worker subprocesses
    sys.path.insert(0, ROOT)

RESULT_MARKER = "BENCH_RESULT "
DEFAULT_OUT = os.path.join(ROOT, "results", "performance.md")
GPU_BATCH_SIZES = (8, 32, 128, 512)
CPU_BATCH_SIZES = (8, 32)
INPUT_SIZE, OUTPUT_SIZE = 176, 88
SATURATION = 0.9  # "saturated": within 90% of the best measured throughput
TORCH_MISSING = "torch not installed: pip install -r requirements-bench.txt; measuring JAX only"
RECURRENCES = ("custom_vjp", "autodiff")  # stylenet_jax.model.RECURRENCES
MATMUL_DTYPES = ("float32", "bfloat16")  # stylenet_jax.model.MATMUL_DTYPES
PROFILE_STEPS = 3  # steps traced by --profile_dir

FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------- flags


class _BatchSizesParser(flags.ArgumentParser):
    """``--batch_sizes=8,32``: a comma list of integers >= 1, as a tuple."""

    def parse(self, argument: Any) -> tuple[int, ...] | None:
        if argument is None or isinstance(argument, tuple):
            return argument
        try:
            sizes = tuple(int(s) for s in str(argument).split(",") if s.strip())
        except ValueError:
            raise ValueError(f"not a comma list of integers: {argument!r}") from None
        if not sizes or min(sizes) < 1:
            raise ValueError(f"batch sizes must be >= 1: {argument!r}")
        return sizes

    def flag_type(self) -> str:
        return "comma list of integers >= 1"


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The command's flags, defined only when it runs as a program (or into a test's own
    ``FlagValues``), so that importing this module defines nothing."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_enum("device", "auto", ["cpu", "gpu", "auto"],
                      "Where both frameworks run. auto: the GPU if JAX sees one, else the CPU. "
                      "gpu fails with a message if JAX has no GPU.", **fv)
    flags.DEFINE(_BatchSizesParser(), "batch_sizes", None,
                 "Comma list of windows per training batch to sweep. Default: "
                 f"{','.join(map(str, GPU_BATCH_SIZES))} on a GPU, "
                 f"{','.join(map(str, CPU_BATCH_SIZES))} on a CPU (bigger is slow there).",
                 serializer=flags.CsvListSerializer(","), **fv)
    flags.DEFINE_integer("window", 200, "Time steps per training window (paper: 200).",
                         lower_bound=1, **fv)
    flags.DEFINE_integer("repeats", None, "Timed calls per measurement (median and min-max are "
                         "reported). Default: 20 on a GPU, 5 on a CPU.", lower_bound=1, **fv)
    flags.DEFINE_integer("warmup", None, "Untimed calls after the first (compiling) call. "
                         "Default: 3 on a GPU, 1 on a CPU.", lower_bound=0, **fv)
    flags.DEFINE_integer("hidden_size", 176, "LSTM units of the interpretation layer and each "
                         "head layer (paper: 176).", lower_bound=1, **fv)
    flags.DEFINE_integer("num_layers", 3, "Bidirectional LSTM layers of the style head "
                         "(paper: 3).", lower_bound=1, **fv)
    flags.DEFINE_float("keep_prob", 0.8, "Dropout keep probability in training, both "
                       "frameworks (paper: 0.8), in (0, 1].", **fv)
    flags.register_validator("keep_prob", lambda v: 0.0 < v <= 1.0,
                             "--keep_prob must be in (0, 1]", **fv)
    flags.DEFINE_enum("clip", "per_tensor", ["per_tensor", "global", "none"],
                      "Gradient clipping before Adam, both frameworks: each tensor's norm (the "
                      "project's default, the paper's code) or the global norm.", **fv)
    flags.DEFINE_float("clip_norm", 10.0, "Clipping norm (paper: 10).", **fv)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", **fv)
    flags.DEFINE_enum("precision", "fp32", ["fp32", "tf32"],
                      "GPU matmul precision. fp32: true fp32 on both sides (JAX "
                      "precision='highest', torch allow_tf32 off for matmuls and cuDNN); tf32: "
                      "each framework's TF32 (JAX precision=None, the project's default; torch "
                      "allow_tf32 on). No effect on a CPU.", **fv)
    flags.DEFINE_integer("unroll", 1, "JAX: lax.scan unroll factor of the LSTM time loops "
                         "(ModelConfig.unroll; speed only).", lower_bound=1, **fv)
    flags.DEFINE_enum("recurrence", "custom_vjp", list(RECURRENCES),
                      "JAX: how the LSTM time loop is differentiated (ModelConfig.recurrence; "
                      "speed only): custom_vjp, the project's hand-written backward pass, or "
                      "autodiff, JAX differentiating the lax.scan itself.", **fv)
    flags.DEFINE_enum("matmul_dtype", "float32", list(MATMUL_DTYPES),
                      "Matmul inputs, both frameworks. float32; bfloat16: JAX rounds every "
                      "matmul's inputs to bfloat16 and accumulates in float32 "
                      "(ModelConfig.matmul_dtype); PyTorch runs forward and loss under "
                      "torch.autocast(dtype=torch.bfloat16).", **fv)
    flags.DEFINE_bool("skip_torch", False, "Measure JAX only (no PyTorch columns).", **fv)
    flags.DEFINE_bool("torch_fused_layers", False,
                      "PyTorch head as ONE nn.LSTM(num_layers) call (cuDNN runs the stack at "
                      "once; dropout once between layers) instead of one nn.LSTM per layer "
                      "(dropout exactly as in JAX).", **fv)
    flags.DEFINE_integer("inference_steps", 1500,
                         "Steps of the inference piece (batch 1, forward only; ~1,500 = a "
                         "3-minute piece in sixteenths). 0 skips inference.", lower_bound=0, **fv)
    flags.DEFINE_float("epoch_seconds", None,
                       "Measured seconds per epoch of a real `experiments.train` run with the "
                       "paper's flags on ../shared/data on this device; the report then "
                       "projects the 160-epoch schedule from it (labelled as a projection).",
                       **fv)
    flags.DEFINE_string("epoch_note", "", "Where --epoch_seconds comes from (run, epochs "
                        "averaged), for the report.", **fv)
    flags.DEFINE_integer("cpu_threads", 0,
                         "CPU only, needs --isolate: pin each measurement's process to this "
                         "many cores (sched_setaffinity) and give torch as many threads, for "
                         "both frameworks alike. 0: each framework's default (all usable "
                         "cores). On a loaded shared machine, torch's OpenMP threads can stall "
                         "at every barrier; 1 gives a stable single-core comparison.",
                         lower_bound=0, **fv)
    flags.DEFINE_multi_string("note", [], "A line for the report's notes, e.g. what else was "
                              "running", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of parameters and random batches.", **fv)
    flags.DEFINE_string("out", DEFAULT_OUT, "Markdown report to write.", **fv)
    flags.DEFINE_bool("isolate", True,
                      "Run every measurement in a fresh subprocess (clean peak memory, no "
                      "shared allocator). --noisolate runs all in this process (faster; memory "
                      "figures are then this process's running peak).", **fv)
    flags.DEFINE_bool("huge_pages", True,
                      "Linux: re-execute with glibc's transparent-huge-page malloc "
                      "(GLIBC_TUNABLES=glibc.malloc.hugetlb=1, as experiments.train does), so "
                      "BOTH frameworks' measurements run with it; --nohuge_pages measures the "
                      "plain allocator. Ignored when GLIBC_TUNABLES already sets hugetlb.",
                      **fv)
    flags.DEFINE_string("notes_file", "",
                        "A markdown file whose text is copied into the report under 'Analysis' "
                        "(hand-written reading of the figures, kept beside the generated ones).",
                        **fv)
    flags.DEFINE_string("profile_dir", "",
                        "If set: after the timed JAX train step at the FIRST batch size, trace "
                        f"{PROFILE_STEPS} more steps with jax.profiler into this folder "
                        "(Perfetto trace; inside that measurement's worker with --isolate) and "
                        "add a 'Where the time goes' section: the top XLA ops per step, each "
                        "labelled with the JAX operation it came from. Empty: off.", **fv)
    # Internal: one measurement in a worker process (a JSON Spec). Declared under another
    # module's name so that --help leaves it out (--helpfull lists it).
    flags.DEFINE_string("worker", None, "Internal: run one measurement (a JSON Spec) and "
                        "print its result; used by --isolate.",
                        module_name="experiments.bench.internal", **fv)


@dataclasses.dataclass(frozen=True)
class Options:
    """The parsed flags (see ``define_flags``). ``batch_sizes``, ``repeats`` and ``warmup``
    are None until ``run`` fills in the device's defaults."""

    device: str = "auto"
    batch_sizes: tuple[int, ...] | None = None
    window: int = 200
    repeats: int | None = None
    warmup: int | None = None
    hidden_size: int = 176
    num_layers: int = 3
    keep_prob: float = 0.8
    clip: str = "per_tensor"
    clip_norm: float = 10.0
    learning_rate: float = 1e-3
    precision: str = "fp32"
    unroll: int = 1
    recurrence: str = "custom_vjp"
    matmul_dtype: str = "float32"
    skip_torch: bool = False
    torch_fused_layers: bool = False
    inference_steps: int = 1500
    epoch_seconds: float | None = None
    epoch_note: str = ""
    cpu_threads: int = 0
    note: tuple[str, ...] = ()
    seed: int = 0
    out: str = DEFAULT_OUT
    isolate: bool = True
    huge_pages: bool = True
    notes_file: str = ""
    profile_dir: str = ""

    @classmethod
    def from_flags(cls, flag_values: flags.FlagValues = FLAGS) -> "Options":
        values = {f.name: flag_values[f.name].value for f in dataclasses.fields(cls)}
        values["note"] = tuple(values["note"] or ())
        return cls(**values)


def parse_options(argv: Sequence[str]) -> Options:
    """``Options`` from command-line arguments (no program name), parsed by this command's
    own flag definitions in a fresh ``FlagValues`` (for tests and callers that are not the
    command). Bad values raise ``absl.flags.Error``."""
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["bench", *argv])
    return Options.from_flags(flag_values)


# ----------------------------------------------------------------------------- measurements


@dataclasses.dataclass(frozen=True)
class Spec:
    """One measurement: ``framework`` jax|torch, ``kind`` train|infer, ``batch`` rows of
    ``steps`` time steps."""

    framework: str
    kind: str
    batch: int
    steps: int
    device: str
    hidden_size: int
    num_layers: int
    keep_prob: float
    clip: str
    clip_norm: float
    learning_rate: float
    precision: str
    repeats: int
    warmup: int
    seed: int
    torch_fused_layers: bool = False
    cpu_threads: int = 0
    unroll: int = 1
    recurrence: str = "custom_vjp"
    matmul_dtype: str = "float32"
    profile_dir: str = ""  # JAX train only: trace PROFILE_STEPS more steps here (see --profile_dir)


def peak_rss_bytes() -> int | None:
    """This process's peak resident set (Linux VmHWM; elsewhere ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024
    except (ImportError, OSError):
        return None


def time_calls(fn: Callable[[], Any], sync: Callable[[Any], Any], warmup: int,
               repeats: int) -> dict[str, Any]:
    """First call (compiles), ``warmup`` untimed calls, then ``repeats`` timed calls, each
    synchronised to completion. Seconds: ``first`` and the list ``times``."""
    t0 = time.perf_counter()
    sync(fn())
    first = time.perf_counter() - t0
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t0)
    return {"first_s": first, "times_s": times}


def _random_data(spec: Spec):
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    # Inputs like the encoding's (bits); targets in [0, 1]; every window full.
    inputs = (rng.random((spec.batch, spec.steps, INPUT_SIZE)) < 0.05).astype(np.uint8)
    targets = rng.random((spec.batch, spec.steps, OUTPUT_SIZE), dtype=np.float32)
    lengths = np.full((spec.batch,), spec.steps, np.int32)
    return inputs, targets, lengths


def _jax_environment() -> dict[str, Any]:
    import jax

    dev = jax.devices()[0]
    env: dict[str, Any] = {"jax_backend": jax.default_backend(),
                           "jax_device": f"{dev.platform}: {getattr(dev, 'device_kind', dev)}"}
    if dev.platform == "gpu":
        try:  # private module; best effort
            from jax._src.lib import cuda_versions

            if cuda_versions is not None:
                env["jax_cuda_runtime"] = cuda_versions.cuda_runtime_get_version()
                env["jax_cudnn"] = cuda_versions.cudnn_get_version()
        except Exception:  # noqa: BLE001
            pass
    return env


def _memory(out: dict[str, Any]) -> None:
    import jax

    stats = jax.devices()[0].memory_stats() if jax.default_backend() == "gpu" else None
    if stats and "peak_bytes_in_use" in stats:
        out["peak_bytes"], out["memory"] = stats["peak_bytes_in_use"], "device peak_bytes_in_use"
    else:
        out["peak_bytes"], out["memory"] = peak_rss_bytes(), "process peak RSS"


def profile_train_step(step, call: Callable[[], Any], args: Callable[[], tuple],
                       profile_dir: str, steps: int = PROFILE_STEPS) -> dict[str, Any]:
    """Traces ``steps`` calls of ``call`` (one train step each, waited for) with
    ``jax.profiler.trace(profile_dir, create_perfetto_trace=True)`` and summarises the trace
    (``experiments.profile_summary.summarize``), labelling XLA ops from the compiled HLO of
    the same jitted ``step`` lowered for ``args()`` (its current arguments; compiling again
    hits the cache). Returns the summary plus ``trace`` (the file) and ``traced_s`` (each
    traced step's seconds, profiler overhead included)."""
    import jax

    from experiments import profile_summary

    os.makedirs(profile_dir, exist_ok=True)
    before = profile_summary.profile_runs(profile_dir)
    traced = []
    with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
        for _ in range(steps):
            t0 = time.perf_counter()
            jax.block_until_ready(call())
            traced.append(time.perf_counter() - t0)
    path = profile_summary.find_trace_file(profile_dir, exclude=before)
    jitted = getattr(step, "_jitted", step)  # training.CountingJit wraps the jax.jit object
    hlo = jitted.lower(*args()).compile().as_text()
    summary = profile_summary.summarize(profile_summary.load_trace(path), steps, hlo)
    summary.update(trace=os.path.abspath(path), traced_s=traced)
    return summary


def measure_jax(spec: Spec) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    from stylenet_jax import batching, optim, training
    from stylenet_jax.model import StyleNet

    config = training.TrainConfig(
        hidden_size=spec.hidden_size, num_layers=spec.num_layers, keep_prob=spec.keep_prob,
        precision="highest" if spec.precision == "fp32" and spec.device == "gpu" else None,
        learning_rate=spec.learning_rate, clip=spec.clip, clip_norm=spec.clip_norm,
        window=spec.steps, unroll=spec.unroll, recurrence=spec.recurrence,
        matmul_dtype=spec.matmul_dtype)
    model_config = config.model_config(num_styles=1)
    tx = optim.make_optimizer(config)
    state = training.init_state(model_config, tx, spec.seed)
    jax.block_until_ready(state)
    inputs, targets, lengths = _random_data(spec)
    out: dict[str, Any] = _jax_environment()
    if spec.kind == "train":
        step = training.make_train_step(model_config, tx, loss="full")
        batch = batching.Batch(jnp.asarray(inputs), jnp.asarray(targets), jnp.asarray(lengths),
                               jnp.zeros((spec.batch,), jnp.int32),
                               jnp.ones((spec.batch,), bool))
        holder = {"state": state, "metrics": training.zero_metrics(1)}

        def call():
            holder["state"], holder["metrics"], _ = step(holder["state"], holder["metrics"],
                                                         batch, None)
            return holder["state"]

        out.update(time_calls(call, jax.block_until_ready, spec.warmup, spec.repeats))
        loss = jax.device_get(holder["metrics"])
        out["loss"] = float(loss["se"].sum() / max(loss["cells"].sum(), 1.0))
        out["compiles"] = step.compiles
        _memory(out)  # before profiling: the profiler's buffers are not the step's
        if spec.profile_dir:
            try:
                out["profile"] = profile_train_step(
                    step, call, lambda: (holder["state"], holder["metrics"], batch, None),
                    spec.profile_dir)
            except Exception as e:  # noqa: BLE001 - the timings stand; the report says why
                out["profile"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    else:
        model = StyleNet(model_config)
        forward = jax.jit(lambda p, x, n: model.apply({"params": p}, x, n, train=False)[0])
        x, n, params = jnp.asarray(inputs), jnp.asarray(lengths), state.params
        out.update(time_calls(lambda: forward(params, x, n), jax.block_until_ready,
                              spec.warmup, spec.repeats))
        _memory(out)
    return out


def _torch_environment(torch, device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        env["torch_device"] = f"cuda: {torch.cuda.get_device_name(device)}"
        env["torch_cuda"] = torch.version.cuda
        env["torch_cudnn"] = torch.backends.cudnn.version()
    else:
        env["torch_device"] = "cpu"
    return env


def measure_torch(spec: Spec) -> dict[str, Any]:
    import torch

    from experiments import torch_reference

    device = torch.device("cuda" if spec.device == "gpu" else "cpu")
    if spec.cpu_threads and device.type == "cpu":
        torch.set_num_threads(spec.cpu_threads)
    if device.type == "cuda":
        tf32 = spec.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(spec.seed)
    model = torch_reference.TorchStyleNet(
        spec.hidden_size, spec.num_layers, keep_prob=spec.keep_prob,
        fused_layers=spec.torch_fused_layers).to(device)
    inputs, targets, lengths = _random_data(spec)
    x = torch.from_numpy(inputs).to(device=device, dtype=torch.float32)
    y = torch.from_numpy(targets).to(device)
    n = torch.from_numpy(lengths).to(device)
    sync = (lambda _: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda _: None)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    out: dict[str, Any] = _torch_environment(torch, device)
    autocast_dtype = torch.bfloat16 if spec.matmul_dtype == "bfloat16" else None
    if spec.kind == "train":
        model.train()
        optimizer = torch.optim.Adam(model.trainable_parameters(), lr=spec.learning_rate)
        step = torch_reference.make_train_step(model, optimizer, spec.clip, spec.clip_norm,
                                               autocast_dtype=autocast_dtype)
        losses = []

        def call():
            losses.append(step(x, y, n))  # full windows: no packing; the loss mask is computed
            return losses[-1]

        out.update(time_calls(call, sync, spec.warmup, spec.repeats))
        out["loss"] = float(torch.stack([l.detach() for l in losses]).mean())
    else:
        model.eval()

        def forward():
            with torch.inference_mode(), torch.autocast(device.type, dtype=autocast_dtype,
                                                        enabled=autocast_dtype is not None):
                return model(x)

        out.update(time_calls(forward, sync, spec.warmup, spec.repeats))
    if device.type == "cuda":
        out["peak_bytes"], out["memory"] = (torch.cuda.max_memory_allocated(device),
                                            "torch.cuda.max_memory_allocated")
    else:
        out["peak_bytes"], out["memory"] = peak_rss_bytes(), "process peak RSS"
    return out


def pin_cpu_threads(n: int) -> str:
    """Pins this process to its first ``n`` usable cores (before JAX or torch start threads)."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:n])
    return f"pinned to {min(n, len(cores))} of {len(cores)} cores"


def measure(spec: Spec) -> dict[str, Any]:
    """Runs one measurement in this process; failures come back as ``{'error': ...}``."""
    try:
        return (measure_jax if spec.framework == "jax" else measure_torch)(spec)
    except Exception as e:  # noqa: BLE001 - reported in the table (e.g. out of memory)
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}


def _worker_env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # GPU: no 75% grab
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def measure_isolated(spec: Spec, timeout: float | None = None) -> dict[str, Any]:
    """``measure(spec)`` in a fresh Python process."""
    cmd = [sys.executable, os.path.abspath(__file__),
           "--worker=" + json.dumps(dataclasses.asdict(spec))]
    try:
        done = subprocess.run(cmd, env=_worker_env(spec.device), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"worker exited {done.returncode}: {tail[:300]}"}


def _worker_main(payload: str) -> int:
    spec = Spec(**json.loads(payload))
    pinned = pin_cpu_threads(spec.cpu_threads) if spec.cpu_threads and spec.device == "cpu" else ""
    result = measure(spec)
    if pinned:
        result["pinned"] = pinned
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------------------- environment


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def resolve_device(requested: str) -> tuple[str | None, str]:
    """('cpu'|'gpu', note), or (None, why not) if ``gpu`` was asked and JAX has none."""
    if requested == "cpu":
        return "cpu", "--device=cpu"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    if has_gpu:
        return "gpu", "--device=gpu" if requested == "gpu" else "auto: JAX sees a GPU"
    if requested == "gpu":
        return None, ("--device=gpu but JAX sees no GPU (install JAX's CUDA build, e.g. "
                      "pip install \"jax[cuda13]\"), or use --device=cpu")
    return "cpu", "auto: JAX sees no GPU"


def torch_status(device: str, skip: bool) -> tuple[bool, str]:
    """(measure torch?, note)."""
    if skip:
        return False, "skipped (--skip_torch)"
    try:
        import torch
    except ImportError:
        return False, TORCH_MISSING
    if device == "gpu" and not torch.cuda.is_available():
        return False, (f"torch {torch.__version__} has no usable CUDA (install its CUDA build); "
                       "measuring JAX only")
    return True, f"torch {torch.__version__}"


def cpu_description() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return f"{name}, {usable} usable cores"


def _overloaded(load: tuple[str, str]) -> bool:
    try:
        cores = len(os.sched_getaffinity(0))
        return max(float(l.split(" / ")[0]) for l in load) > cores
    except (AttributeError, ValueError):
        return False


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- summary


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


def _fmt_s(x: float) -> str:
    return f"{x * 1e3:.1f} ms" if x < 1.0 else f"{x:.2f} s"


def _fmt_mem(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:,.0f} MiB"


def _fmt_sps(s: dict[str, float]) -> str:
    return f"{s['sps']:,.0f} ({s['sps_min']:,.0f}-{s['sps_max']:,.0f})"


def _fmt_step(s: dict[str, float]) -> str:
    return f"{_fmt_s(s['s'])} ({_fmt_s(s['s_min'])}-{_fmt_s(s['s_max'])})"


def _cell(result: dict[str, Any] | None, summary: dict[str, float] | None, what: str) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return f"failed: {result['error']}" if what == "sps" else "-"
    if summary is None:
        return "-"
    return {"sps": lambda: _fmt_sps(summary), "step": lambda: _fmt_step(summary),
            "compile": lambda: f"{summary['compile_s']:.2f} s",
            "mem": lambda: _fmt_mem(result.get("peak_bytes"))}[what]()


def _ratio(a: dict[str, float] | None, b: dict[str, float] | None) -> str:
    if not a or not b:
        return "-"
    return f"{a['sps'] / b['sps']:.2f} ({a['sps_min'] / b['sps_max']:.2f}-{a['sps_max'] / b['sps_min']:.2f})"


def render_profile(args: Options, train: dict[int, dict[str, Any]]) -> list[str]:
    """The "Where the time goes" section of ``--profile_dir`` (first batch size's JAX step)."""
    from experiments import profile_summary

    b = args.batch_sizes[0]
    result = train[b].get("jax") or {}
    lines = [f"## Where the time goes (JAX train step, {b} x {args.window})", ""]
    profile = result.get("profile")
    if "error" in result or not profile or "error" in profile:
        why = result.get("error") or (profile or {}).get("error") or "no profile came back"
        return lines + [f"Not profiled: {why}.", ""]
    summary = summarize_times(result, b, args.window)
    steps = profile["steps"]
    lines.append(
        f"{steps} more steps traced with `jax.profiler.trace` after the timed ones; the trace: "
        f"`{profile.get('trace', '?')}` (open it in ui.perfetto.dev).")
    lines.append("")
    lines.append(
        "- ms / step: the op's SELF time (its duration minus the XLA ops nested in it: a "
        "`while` loop's own time is its loop control, its body's ops are rows of their own), "
        f"summed over the trace, divided by {steps} steps. Calls / step: {args.window} = once "
        "per time step inside a scan. Share: of the measured step (the median above).")
    lines.append(
        "- From: the op's `op_name` in the compiled HLO of the same jitted step, shortened "
        "(outer `jit(...)` and `closed_call` dropped, `jvp(X)` shown as X and the backward "
        "pass, `transpose(...)`, as `backward:`); where XLA left none (e.g. the YNNPACK matmul "
        "fusions `ynn_fusion.*`), what it computes and the loop it sits in. Matmuls with their "
        "operand shapes and dtypes. Source: the Python line JAX recorded for it.")
    lines.append("")
    lines.extend(profile_summary.markdown_lines(profile, summary["s"] if summary else None))
    lines.append("")
    return lines


def render(args: Options, argv: Sequence[str], device: str, device_note: str,
           run_torch: bool, torch_note: str, train: dict[int, dict[str, Any]],
           infer: dict[str, Any], env: dict[str, Any], started: str, elapsed: float,
           load: tuple[str, str]) -> str:
    """The markdown report."""
    notes = ""
    if args.notes_file:
        with open(args.notes_file, encoding="utf-8") as f:
            notes = f.read()
    with_torch = run_torch
    lines: list[str] = []
    add = lines.append
    add("# Performance: stylenet-jax beside PyTorch")
    add("")
    add(f"Written by `experiments/bench.py` on {started} in {elapsed:.0f} s. Produced by:")
    add("")
    add("```bash")
    add("python -m experiments.bench " + shlex.join(argv))
    add("```")
    add("")
    add("## Machine and versions")
    add("")
    add("| what | value |")
    add("|---|---|")
    add(f"| device | {device} ({device_note}) |")
    add(f"| CPU | {cpu_description()} |")
    if env.get("jax_device"):
        add(f"| JAX device | {env['jax_device']} |")
    if env.get("torch_device"):
        add(f"| PyTorch device | {env['torch_device']} (intra-op threads: "
            f"{env.get('torch_threads', '?')}) |")
    if device == "cpu":
        add(f"| CPU threads | {'each measurement ' + env['pinned'] + ' (`--cpu_threads`)' if env.get('pinned') else 'each framework its default (JAX: XLA pool over all usable cores)'} |")
    add(f"| Python | {platform.python_version()} ({platform.platform()}) |")
    for dist in ("jax", "jaxlib", "flax", "optax", "numpy"):
        add(f"| {dist} | {_version(dist) or 'not installed'} |")
    for dist in ("jax-cuda13-plugin", "jax-cuda12-plugin"):
        if _version(dist):
            add(f"| {dist} | {_version(dist)} |")
    add(f"| torch | {_version('torch') or 'not installed'}"
        f"{'' if with_torch else ' (not measured: ' + torch_note + ')'} |")
    cuda = [f"{k}: {env[k]}" for k in ("jax_cuda_runtime", "jax_cudnn", "torch_cuda",
                                       "torch_cudnn") if env.get(k) is not None]
    add(f"| CUDA / cuDNN | {', '.join(cuda) if cuda else 'none (CPU run)'} |")
    add(f"| load average (1/5/15 min) | before {load[0]}; after {load[1]} |")
    add("")
    add("## Setup")
    add("")
    mem = ("GPU: JAX `memory_stats()['peak_bytes_in_use']`, `torch.cuda.max_memory_allocated`"
           if device == "gpu" else
           "CPU: the peak RSS (VmHWM) of the process that ran the measurement, libraries and "
           "the framework's own footprint included")
    iso = ("each measurement in its own fresh process (`--isolate`)" if args.isolate else
           "all in one process (`--noisolate`): memory is that process's running peak")
    add(f"- Network: ONE style head of the paper's StyleNet: interpretation LSTM {INPUT_SIZE} -> "
        f"{args.hidden_size}, {args.num_layers} bidirectional LSTM layers of {args.hidden_size}, "
        f"linear {2 * args.hidden_size} -> {OUTPUT_SIZE}, sigmoid; fp32 parameters"
        + ("" if args.matmul_dtype == "float32" else ", bfloat16 matmul inputs (below)")
        + f"; dropout keep {args.keep_prob:g} in training (both frameworks).")
    clip = {"per_tensor": f"each tensor's gradient norm clipped to {args.clip_norm:g} "
                          "separately (per weight/bias, per direction: the project's default "
                          "`--clip=per_tensor`)",
            "global": f"global gradient norm clipped to {args.clip_norm:g}",
            "none": "no clipping"}[args.clip]
    add(f"- Training step: B windows x {args.window} steps x {INPUT_SIZE}, all windows full; "
        f"MSE over every cell of real steps; {clip}; then Adam {args.learning_rate:g}.")
    add("- stylenet-jax: the project's `training.make_train_step` / `init_state` / "
        "`make_optimizer` (what `experiments.train` runs), jitted, state donated, batch a "
        "`batching.Batch` on the device.")
    add("- PyTorch: `experiments/torch_reference.py`, `nn.LSTM` per layer"
        + (" (`--torch_fused_layers`: the head's layers in ONE nn.LSTM call)"
           if args.torch_fused_layers else "")
        + " (cuDNN on a GPU), `torch.optim.Adam` (default implementation); the same "
        "trainable tensors as JAX (`bias_hh` frozen at 0). Eager, no `torch.compile`.")
    add(f"- JAX model options: `--unroll={args.unroll}` (`lax.scan` unroll of the LSTM time "
        f"loops), `--recurrence={args.recurrence}` ("
        + {"custom_vjp": "the project's hand-written LSTM backward pass",
           "autodiff": "JAX differentiates the LSTM's `lax.scan` itself"}.get(args.recurrence, "?")
        + f"), `--matmul_dtype={args.matmul_dtype}`: the `TrainConfig` / `ModelConfig` fields "
        "of the same names.")
    add(f"- Precision: `--precision={args.precision}`"
        + (" (no effect on a CPU)." if device == "cpu" else "."))
    if args.matmul_dtype == "bfloat16":
        add("- `--matmul_dtype=bfloat16`: JAX rounds every matmul's inputs to bfloat16 and "
            "accumulates in float32 (`ModelConfig.matmul_dtype`); the LSTM state, gates, loss, "
            "gradients and Adam stay float32. PyTorch runs the forward pass under "
            f"`torch.autocast('{'cuda' if device == 'gpu' else 'cpu'}', dtype=torch.bfloat16)` "
            "(loss in float32, backward outside autocast, parameters and Adam float32)"
            + (": on a CPU, autocast hands `nn.LSTM` to oneDNN's bfloat16 LSTM kernel "
               "(`aten::mkldnn_rnn_layer` with bfloat16 input, weights and states, checked with "
               "the PyTorch profiler, forward, backward and inference), whose outputs and h/c "
               "states are bfloat16 too: more of PyTorch's LSTM runs in bfloat16 than JAX's "
               "matmul inputs." if device == "cpu" else
               ": whether cuDNN's LSTM runs in bfloat16 under autocast was not checked on this "
               "GPU (it was on a CPU, where oneDNN's bfloat16 LSTM kernel runs)."))
    add(f"- Timing: the first call (compile + run), {args.warmup} more untimed, then "
        f"{args.repeats} timed calls, each waited for (`block_until_ready`, "
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
        add("- A CPU machine may be shared with other work (see the load averages above): "
            "JAX and PyTorch ran one after the other, not at once, alternating per batch "
            "size, so slow drifts hit both. Read the min-max ranges.")
    for note in args.note:
        add(f"- Note: {note}")
    if (device == "cpu" and with_torch and not args.cpu_threads
            and (env.get("torch_threads") or 1) > 1 and _overloaded(load)):
        add("- Warning: the load average exceeded the usable cores while PyTorch ran with "
            f"{env.get('torch_threads')} OpenMP threads: each of its parallel regions can wait "
            "for a descheduled thread, which slows it down by orders of magnitude on a shared "
            "machine. Compare with `--cpu_threads=1`.")
    add("")
    add(f"## Training step (batch sweep, windows of {args.window} steps)")
    add("")
    head = ["windows", "JAX steps/s", "JAX s/step", "JAX compile", "JAX peak memory"]
    if with_torch:
        head += ["PyTorch steps/s", "PyTorch s/step", "PyTorch first-call overhead",
                 "PyTorch peak memory", "JAX / PyTorch throughput"]
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))
    jax_points, torch_points = [], []
    for b in args.batch_sizes:
        j, t = train[b].get("jax"), train[b].get("torch")
        js = summarize_times(j, b, args.window) if j else None
        ts = summarize_times(t, b, args.window) if t else None
        jax_points.append((b, js["sps"] if js else None))
        torch_points.append((b, ts["sps"] if ts else None))
        row = [f"{b} x {args.window}", _cell(j, js, "sps"), _cell(j, js, "step"),
               _cell(j, js, "compile"), _cell(j, js, "mem")]
        if with_torch:
            row += [_cell(t, ts, "sps"), _cell(t, ts, "step"), _cell(t, ts, "compile"),
                    _cell(t, ts, "mem"), _ratio(js, ts)]
        add("| " + " | ".join(row) + " |")
    add("")
    add("Ratio > 1: JAX is faster. Its range pairs the extremes (JAX min / PyTorch max to "
        "JAX max / PyTorch min).")
    recompiles = [b for b in args.batch_sizes
                  if (train[b].get("jax") or {}).get("compiles", 1) > 1]
    if recompiles:
        add("")
        add(f"Warning: the JAX train step compiled more than once at batch {recompiles}.")
    add("")
    add("## Throughput saturation")
    add("")
    add(f"Saturated = the smallest batch within {SATURATION:.0%} of the best throughput measured.")
    add("")
    add(f"- stylenet-jax: {saturation([p for p in jax_points if p[1]])}.")
    if with_torch:
        add(f"- PyTorch: {saturation([p for p in torch_points if p[1]])}.")
    add("")
    if args.profile_dir:
        lines.extend(render_profile(args, train))
    add(f"## Inference (one piece: batch 1 x {args.inference_steps} steps, forward only)")
    add("")
    if not args.inference_steps:
        add("Skipped (`--inference_steps=0`).")
    else:
        add("No dropout, no gradient (JAX: a jitted `StyleNet.apply(train=False)`; PyTorch: "
            "`eval()` under `torch.inference_mode()`). Steps/s = steps of the piece / seconds.")
        add("")
        add("| framework | steps/s | latency | compile / first-call overhead | peak memory |")
        add("|---|---|---|---|---|")
        frameworks = [("stylenet-jax", "jax")] + ([("PyTorch", "torch")] if with_torch else [])
        sums = {}
        for label, key in frameworks:
            r = infer.get(key)
            s = summarize_times(r, 1, args.inference_steps) if r else None
            sums[key] = s
            add(f"| {label} | {_cell(r, s, 'sps')} | {_cell(r, s, 'step')} | "
                f"{_cell(r, s, 'compile')} | {_cell(r, s, 'mem')} |")
        if with_torch:
            add("")
            add(f"JAX / PyTorch inference throughput: {_ratio(sums.get('jax'), sums.get('torch'))}.")
    add("")
    add("## Full paper schedule (160 epochs on ../shared/data)")
    add("")
    if args.epoch_seconds:
        hours = 160 * args.epoch_seconds / 3600
        add(f"- Measured: {args.epoch_seconds:,.0f} s per epoch of a real `experiments.train` "
            f"run with `experiments/configs/stylenet.flags` on this {device}"
            + (f" ({args.epoch_note})" if args.epoch_note else "") + " (given with "
            "`--epoch_seconds`).")
        add(f"- PROJECTION, not a measured 160-epoch run: 160 x {args.epoch_seconds:,.0f} s = "
            f"{hours:,.1f} h ({hours / 24:,.1f} days) of training on this {device}, "
            "validation and checkpoints included as far as the measured epochs had them.")
    else:
        add(f"- Not measured on this {device}: pass `--epoch_seconds` (seconds per epoch of "
            "a real `experiments.train` run) to record it and project 160 epochs.")
    if device != "gpu" or not args.epoch_seconds:
        add("- GPU: the 160-epoch wall time has not been measured on a GPU yet.")
    add("")
    if notes:
        add("## Analysis")
        add("")
        add(f"Hand-written, from `{os.path.relpath(args.notes_file, ROOT)}` (`--notes_file`); "
            "everything above it is generated.")
        add("")
        lines.extend(notes.rstrip("\n").splitlines())
        add("")
    add("## GPU")
    add("")
    if device == "gpu":
        add("The tables above are GPU figures.")
    else:
        add("GPU figures: not measured; this session had no GPU. On a GPU machine run "
            "`python -m experiments.bench --device=gpu` (sweeps 8, 32, 128, 512 windows by "
            "default; add `--precision=tf32` for the frameworks' TF32 defaults and "
            "`--torch_fused_layers` for cuDNN's multi-layer call).")
    add("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args: Options, argv: Sequence[str]) -> int:
    """The benchmark for parsed ``args``; ``argv``: the command line, for the report.
    Returns the exit status (0, or 2 with a one-line message for an impossible request)."""
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t_start, load_before = time.perf_counter(), _load()
    device, device_note = resolve_device(args.device)
    if device is None:
        return _error(device_note)
    gpu = device == "gpu"
    if args.notes_file and not os.path.isfile(args.notes_file):
        return _error(f"--notes_file: no such file {args.notes_file}")
    if args.cpu_threads and not gpu and not args.isolate:
        return _error("--cpu_threads needs --isolate (JAX's threads start with the process)")
    args = dataclasses.replace(
        args, batch_sizes=args.batch_sizes or (GPU_BATCH_SIZES if gpu else CPU_BATCH_SIZES),
        repeats=args.repeats or (20 if gpu else 5),
        warmup=(3 if gpu else 1) if args.warmup is None else args.warmup,
        profile_dir=os.path.abspath(args.profile_dir) if args.profile_dir else "")
    run_torch, torch_note = torch_status(device, args.skip_torch)
    if not run_torch:
        print(torch_note, file=sys.stderr)
    measure_one = measure_isolated if args.isolate else measure
    base = dict(device=device, hidden_size=args.hidden_size, num_layers=args.num_layers,
                keep_prob=args.keep_prob, clip=args.clip, clip_norm=args.clip_norm,
                learning_rate=args.learning_rate, precision=args.precision,
                repeats=args.repeats, warmup=args.warmup, seed=args.seed,
                torch_fused_layers=args.torch_fused_layers,
                cpu_threads=args.cpu_threads if device == "cpu" else 0, unroll=args.unroll,
                recurrence=args.recurrence, matmul_dtype=args.matmul_dtype)
    frameworks = ["jax"] + (["torch"] if run_torch else [])
    env: dict[str, Any] = {}
    train: dict[int, dict[str, Any]] = {}
    for b in args.batch_sizes:  # JAX and PyTorch alternate, so slow drifts hit both
        train[b] = {}
        for fw in frameworks:
            print(f"[bench] train {fw} {b} x {args.window} ...", file=sys.stderr, flush=True)
            profile = args.profile_dir if fw == "jax" and b == args.batch_sizes[0] else ""
            r = measure_one(Spec(fw, "train", b, args.window, profile_dir=profile, **base))
            train[b][fw] = r
            env.update({k: v for k, v in r.items() if k.startswith(("jax_", "torch_", "pinned"))})
            s = summarize_times(r, b, args.window)
            print(f"[bench]   {r['error'] if 'error' in r else _fmt_sps(s) + ' steps/s'}",
                  file=sys.stderr, flush=True)
            if profile and "profile" in r:
                p = r["profile"]
                print(f"[bench]   profile: {p.get('error') or p.get('trace')}", file=sys.stderr,
                      flush=True)
    infer: dict[str, Any] = {}
    if args.inference_steps:
        for fw in frameworks:
            print(f"[bench] inference {fw} 1 x {args.inference_steps} ...", file=sys.stderr,
                  flush=True)
            r = measure_one(Spec(fw, "infer", 1, args.inference_steps, **base))
            infer[fw] = r
            env.update({k: v for k, v in r.items() if k.startswith(("jax_", "torch_", "pinned"))})
            s = summarize_times(r, 1, args.inference_steps)
            print(f"[bench]   {r['error'] if 'error' in r else _fmt_sps(s) + ' steps/s'}",
                  file=sys.stderr, flush=True)
    report = render(args, argv, device, device_note, run_torch, torch_note, train, infer, env,
                    started, time.perf_counter() - t_start, (load_before, _load()))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(report)
    os.replace(tmp, args.out)
    print(f"[bench] wrote {args.out}", file=sys.stderr)
    return 0


def _parse_flags(argv: Sequence[str]) -> list[str]:
    """absl's flag parsing, with a bad flag reported in one line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e} (see --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: Sequence[str]) -> int:
    """The absl program: ``argv`` is what is left after the flags."""
    if FLAGS.worker is not None:
        return _worker_main(FLAGS.worker)
    if len(argv) > 1:
        return _error(f"unexpected arguments: {' '.join(argv[1:])} (see --help)")
    if FLAGS.huge_pages:
        from stylenet_jax import hugepages

        hugepages.reexec()  # quietly: the report's Setup says which allocator ran
    return run(Options.from_flags(FLAGS), sys.argv[1:])


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=_parse_flags)
