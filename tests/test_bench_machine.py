"""Tests of the benchmark's machine description (experiments/bench_machine.py)."""

import sys

from experiments import bench_machine


def test_device_and_torch_status():
    assert bench_machine.resolve_device("cpu") == ("cpu", "--device=cpu")
    assert bench_machine.torch_status("cpu", skip=True) == (False, "skipped (--skip_torch)")


def test_torch_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert bench_machine.torch_status("cpu", skip=False) == (False, bench_machine.TORCH_MISSING)


def test_cpu_load_and_versions():
    assert "usable cores" in bench_machine.cpu_description() and bench_machine.usable_cores() >= 1
    load = bench_machine.load_average()
    assert load.count(" / ") == 2 or load == "n/a"
    assert bench_machine.version("jax") and bench_machine.version("no-such-dist") is None
