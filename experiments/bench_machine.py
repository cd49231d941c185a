"""The machine a benchmark runs on: which device, whether PyTorch can run, the CPU, the load
and the installed versions (for ``bench`` and its report)."""

from __future__ import annotations

import importlib.metadata
import os
import platform

TORCH_MISSING = "torch not installed: pip install -r requirements-bench.txt; measuring JAX only"


def version(dist: str) -> str | None:
    """An installed distribution's version, or None."""
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


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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
    return f"{name}, {usable_cores()} usable cores"


def load_average() -> str:
    """The 1/5/15-minute load averages, "a / b / c" (or "n/a")."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
