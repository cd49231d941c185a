"""The benchmark's measurements: one ``Spec`` in, timings and peak memory out.

* ``measure(spec)`` times one thing in this process: the project's jitted training step
  (``train_steps.init_state`` / ``train_step``, what ``experiments.train`` runs) or its one
  forward pass (``model.predict``), or the same network in PyTorch
  (``experiments.torch_reference``), all built from the spec's ``ModelConfig`` and
  ``OptimConfig``.
* ``measure_isolated(spec)`` runs it in a fresh process (``python -m
  experiments.bench_measure SPEC_JSON``), so peak memory belongs to that measurement alone and
  JAX and PyTorch never share a process or an allocator.

Timing: a first (compiling) call, ``warmup`` untimed calls, then ``repeats`` timed calls, each
waited for (``block_until_ready`` / ``torch.cuda.synchronize``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable

from stylenet_jax.config import ModelConfig, OptimConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEVICE_DEFAULTS = {  # per device: windows per batch to sweep, timed calls, untimed calls
    "gpu": {"batch_sizes": (8, 32, 128, 512), "repeats": 20, "warmup": 3},
    "cpu": {"batch_sizes": (8, 32), "repeats": 5, "warmup": 1},  # bigger batches: slow here
}
RESULT_MARKER = "BENCH_RESULT "
PROFILE_STEPS = 3  # steps traced when a spec has a profile_dir
ENVIRONMENT_KEYS = ("jax_", "torch_", "pinned")  # result keys that describe the machine
FORCE_HOST_DEVICES = "--xla_force_host_platform_device_count"  # XLA flag: N CPU devices


@dataclasses.dataclass(frozen=True)
class Spec:
    """One measurement: ``framework`` jax|torch, ``kind`` train|infer, ``batch`` rows of
    ``steps`` time steps on ``device`` cpu|gpu, of the one-head network ``model``
    (``num_styles=1``) trained with ``optim``."""

    framework: str
    kind: str
    batch: int
    steps: int
    device: str
    model: ModelConfig
    optim: OptimConfig
    repeats: int
    warmup: int
    seed: int = 0
    torch_fused_layers: bool = False
    cpu_threads: int = 0  # CPU: pin the process to this many cores (0: all)
    profile_dir: str = ""  # JAX train only: trace PROFILE_STEPS more steps into this folder
    devices: int = 0  # JAX train only: data parallel over this many devices (0: as today)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        d = json.loads(text)
        return cls(**{**d, "model": ModelConfig.from_dict(d["model"]),
                      "optim": OptimConfig(**d["optim"])})


# ----------------------------------------------------------------------------- timing


def time_calls(fn: Callable[[], Any], sync: Callable[[Any], Any], warmup: int,
               repeats: int) -> dict[str, Any]:
    """First call (compiles), ``warmup`` untimed calls, then ``repeats`` timed calls, each
    synchronised to completion. Seconds: ``first_s`` and the list ``times_s``."""
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


def random_data(spec: Spec):
    """(inputs uint8 (B, T, 176) bits like the encoding's, targets float32 (B, T, 88) in
    [0, 1], lengths int32 (B,) = T: every window full), from ``spec.seed``."""
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    inputs = (rng.random((spec.batch, spec.steps, spec.model.input_size)) < 0.05
              ).astype(np.uint8)
    targets = rng.random((spec.batch, spec.steps, spec.model.output_size), dtype=np.float32)
    lengths = np.full((spec.batch,), spec.steps, np.int32)
    return inputs, targets, lengths


# ----------------------------------------------------------------------------- JAX


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


def _jax_memory(out: dict[str, Any]) -> None:
    import jax

    stats = jax.devices()[0].memory_stats() if jax.default_backend() == "gpu" else None
    if stats and "peak_bytes_in_use" in stats:
        out["peak_bytes"], out["memory"] = stats["peak_bytes_in_use"], "device peak_bytes_in_use"
    else:
        out["peak_bytes"], out["memory"] = peak_rss_bytes(), "process peak RSS"


def profile_train_step(call: Callable[[], Any], compiled_text: Callable[[], str],
                       profile_dir: str, steps: int = PROFILE_STEPS) -> dict[str, Any]:
    """Traces ``steps`` calls of ``call`` (one train step each, waited for) with
    ``jax.profiler.trace(profile_dir, create_perfetto_trace=True)`` and summarises the trace
    (``experiments.profile_summary.summarize``), labelling XLA ops from ``compiled_text()``,
    the compiled HLO of the same step. Returns the summary plus ``trace`` (the file) and
    ``traced_s`` (each traced step's seconds, profiler overhead included)."""
    import jax

    from experiments import profile_summary, profile_trace

    os.makedirs(profile_dir, exist_ok=True)
    before = profile_trace.profile_runs(profile_dir)
    traced = []
    with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
        for _ in range(steps):
            t0 = time.perf_counter()
            jax.block_until_ready(call())
            traced.append(time.perf_counter() - t0)
    path = profile_trace.find_trace_file(profile_dir, exclude=before)
    summary = profile_summary.summarize(profile_trace.load_trace(path), steps, compiled_text())
    summary.update(trace=os.path.abspath(path), traced_s=traced)
    return summary


def measure_jax(spec: Spec) -> dict[str, Any]:
    """The project's train step (``train_steps.train_step`` on a ``batching.Batch``, state
    donated) or forward pass (``model.predict``) for ``spec``. With ``spec.devices``, the
    train step runs data parallel (``stylenet_jax.parallel``): the batch's rows sharded over
    that many devices (padded with empty rows if they do not divide), state replicated."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from experiments import bench_devices
    from stylenet_jax import batching, model, train_steps

    configs = {"model_config": spec.model, "optim": spec.optim}
    parallel = (bench_devices.data_parallel(spec.devices) if spec.devices and spec.kind == "train"
                else None)
    state = train_steps.init_state(jax.random.PRNGKey(spec.seed), **configs)
    jax.block_until_ready(state)
    inputs, targets, lengths = random_data(spec)
    out: dict[str, Any] = _jax_environment()
    if spec.kind == "infer":
        x, n, params = jnp.asarray(inputs), jnp.asarray(lengths), state.params
        out.update(time_calls(lambda: model.predict(params, x, n, config=spec.model),
                              jax.block_until_ready, spec.warmup, spec.repeats))
        _jax_memory(out)
        return out
    host = batching.Batch(inputs, targets, lengths, np.zeros((spec.batch,), np.int32),
                          np.ones((spec.batch,), bool))
    holder = {"state": state, "metrics": train_steps.zero_metrics(spec.model.num_styles)}
    if parallel is None:
        batch = jax.tree.map(jnp.asarray, host)
    else:
        batch, holder = parallel.put_batch(host), parallel.put_replicated(holder)

    def call():
        holder["state"], holder["metrics"], _ = train_steps.train_step(
            holder["state"], holder["metrics"], batch, None, **configs)
        return holder["state"]

    traces_before = train_steps.train_traces(spec.model, spec.optim)
    out.update(time_calls(call, jax.block_until_ready, spec.warmup, spec.repeats))
    out["compiles"] = train_steps.train_traces(spec.model, spec.optim) - traces_before  # 0: an
    # earlier run of this process compiled it
    if parallel is not None:
        out["data_parallel"] = bench_devices.placement(parallel, batch, holder["state"])
    metrics = jax.device_get(holder["metrics"])
    out["loss"] = float(metrics["se"].sum() / max(metrics["cells"].sum(), 1.0))
    _jax_memory(out)  # before profiling: the profiler's buffers are not the step's
    if spec.profile_dir:
        def compiled_text() -> str:  # the same jitted step for its current arguments
            return train_steps.train_step.lower(
                holder["state"], holder["metrics"], batch, None, **configs).compile().as_text()

        try:
            out["profile"] = profile_train_step(call, compiled_text, spec.profile_dir)
        except Exception as e:  # noqa: BLE001 - the timings stand; the report says why
            out["profile"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    return out


# ----------------------------------------------------------------------------- PyTorch


def torch_tf32(model_config: ModelConfig) -> bool:
    """Whether PyTorch runs TF32 on a GPU for the JAX ``precision``: off only for
    'highest' (true fp32 in both frameworks); unset, 'default' and 'high' are each
    framework's TF32."""
    return model_config.precision != "highest"


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
    """``experiments.torch_reference``'s network and train step (eager, ``torch.optim.Adam``)
    or its forward pass (``eval()`` under ``torch.inference_mode()``) for ``spec``."""
    import torch

    from experiments import torch_reference

    device = torch.device("cuda" if spec.device == "gpu" else "cpu")
    if spec.cpu_threads and device.type == "cpu":
        torch.set_num_threads(spec.cpu_threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch_tf32(spec.model)
        torch.backends.cudnn.allow_tf32 = torch_tf32(spec.model)
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(spec.seed)
    net = torch_reference.TorchStyleNet.from_config(
        spec.model, fused_layers=spec.torch_fused_layers).to(device)
    inputs, targets, lengths = random_data(spec)
    x = torch.from_numpy(inputs).to(device=device, dtype=torch.float32)
    y = torch.from_numpy(targets).to(device)
    n = torch.from_numpy(lengths).to(device)
    sync = (lambda _: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda _: None)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    out: dict[str, Any] = _torch_environment(torch, device)
    autocast_dtype = torch.bfloat16 if spec.model.matmul_dtype == "bfloat16" else None
    if spec.kind == "train":
        net.train()
        optimizer = torch.optim.Adam(net.trainable_parameters(), lr=spec.optim.learning_rate)
        step = torch_reference.make_train_step(net, optimizer, spec.optim.clip,
                                               spec.optim.clip_norm, autocast_dtype=autocast_dtype,
                                               loss=spec.optim.loss)
        losses = []

        def call():
            losses.append(step(x, y, n))  # full windows: no packing; the loss mask is computed
            return losses[-1]

        out.update(time_calls(call, sync, spec.warmup, spec.repeats))
        out["loss"] = float(torch.stack([l.detach() for l in losses]).mean())
    else:
        net.eval()

        def forward():
            with torch.inference_mode(), torch.autocast(device.type, dtype=autocast_dtype,
                                                        enabled=autocast_dtype is not None):
                return net(x)

        out.update(time_calls(forward, sync, spec.warmup, spec.repeats))
    if device.type == "cuda":
        out["peak_bytes"], out["memory"] = (torch.cuda.max_memory_allocated(device),
                                            "torch.cuda.max_memory_allocated")
    else:
        out["peak_bytes"], out["memory"] = peak_rss_bytes(), "process peak RSS"
    return out


# ----------------------------------------------------------------------------- processes


def measure(spec: Spec) -> dict[str, Any]:
    """Runs one measurement in this process; failures come back as ``{'error': ...}``."""
    try:
        return (measure_jax if spec.framework == "jax" else measure_torch)(spec)
    except Exception as e:  # noqa: BLE001 - reported in the table (e.g. out of memory)
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}


def pin_cpu_threads(n: int) -> str:
    """Pins this process to its first ``n`` usable cores (before JAX or torch start threads)."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:n])
    return f"pinned to {min(n, len(cores))} of {len(cores)} cores"


def worker_environment(device: str, devices: int = 0) -> dict[str, str]:
    """The environment of a measurement's process: this one's (allocator settings included),
    the repository on the path, no GPU preallocation, and no GPU at all for a CPU run. A CPU
    run with ``devices`` gets that many forced host devices (``XLA_FLAGS``, read when JAX
    starts); a GPU run sees the real GPUs and takes the first ``devices``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # GPU: no 75% grab
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
        if devices:
            kept = [f for f in env.get("XLA_FLAGS", "").split()
                    if not f.startswith(FORCE_HOST_DEVICES)]
            env["XLA_FLAGS"] = " ".join(kept + [f"{FORCE_HOST_DEVICES}={devices}"])
    return env


def measure_isolated(spec: Spec, timeout: float | None = None) -> dict[str, Any]:
    """``measure(spec)`` in a fresh Python process (``worker_main``)."""
    cmd = [sys.executable, "-m", "experiments.bench_measure", spec.to_json()]
    try:
        done = subprocess.run(cmd, env=worker_environment(spec.device, spec.devices), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"worker exited {done.returncode}: {tail[:300]}"}


def worker_main(spec_json: str) -> int:
    """One measurement in this (fresh) process: pins its cores if asked, then prints
    ``RESULT_MARKER`` and the result as JSON."""
    spec = Spec.from_json(spec_json)
    pinned = pin_cpu_threads(spec.cpu_threads) if spec.cpu_threads and spec.device == "cpu" else ""
    result = measure(spec)
    if pinned:
        result["pinned"] = pinned
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m experiments.bench_measure SPEC_JSON (one measurement; "
                 "experiments.bench runs this)")
    sys.exit(worker_main(sys.argv[1]))
