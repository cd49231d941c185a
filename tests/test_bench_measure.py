"""Tests of the benchmark's measurements (experiments/bench_measure.py), tiny, on the CPU."""

import dataclasses

import pytest

from experiments import bench_measure
from stylenet_jax import train_steps
from stylenet_jax.config import ModelConfig, OptimConfig


def spec(**changes):
    base = bench_measure.Spec(
        "jax", "train", 2, 6, "cpu", model=ModelConfig(num_styles=1, hidden_size=5, num_layers=1),
        optim=OptimConfig(), repeats=2, warmup=0, seed=0)
    return dataclasses.replace(base, **changes)


def test_spec_round_trips_through_json():
    s = spec(model=ModelConfig(num_styles=1, hidden_size=8, precision="highest",
                               matmul_dtype="bfloat16"),
             optim=OptimConfig(clip="global", loss="onset"), profile_dir="/tmp/p")
    assert bench_measure.Spec.from_json(s.to_json()) == s


def test_the_specs_configs_reach_the_project_step(monkeypatch):
    """The measured step is ``train_steps.train_step`` with the spec's own ModelConfig and
    OptimConfig as its static configs (stopped there: what the fields do is the model's and
    the optimizer's tests' business)."""
    seen = []

    def spy(state, metrics, batch, carry, **configs):
        seen.append(configs)
        raise RuntimeError("spy: stop before compiling")

    monkeypatch.setattr(train_steps, "train_step", spy)
    s = spec(model=ModelConfig(num_styles=1, hidden_size=8, num_layers=1, keep_prob=1.0,
                               unroll=2, recurrence="autodiff", matmul_dtype="bfloat16"),
             optim=OptimConfig(clip="none", learning_rate=0.01))
    assert bench_measure.measure(s) == {"error": "RuntimeError: spy: stop before compiling"}
    assert seen == [{"model_config": s.model, "optim": s.optim}]


def test_jax_train_and_inference_measurements():
    """Timings, loss, memory and the compile count of the module-level jitted step (a second
    identical measurement in the same process reuses the compiled step)."""
    s = spec(model=ModelConfig(num_styles=1, hidden_size=3, num_layers=1))  # a config of its own
    first = bench_measure.measure(s)
    assert "error" not in first, first
    assert len(first["times_s"]) == 2 and first["first_s"] > 0
    assert first["compiles"] == 1 and first["loss"] > 0
    assert first["peak_bytes"] > 0 and first["memory"] == "process peak RSS"
    assert first["jax_backend"] == "cpu"
    assert bench_measure.measure(s)["compiles"] == 0
    assert train_steps.train_traces(s.model, s.optim) == 1
    infer = bench_measure.measure(dataclasses.replace(s, kind="infer", batch=1, steps=9))
    assert "error" not in infer and len(infer["times_s"]) == 2 and "compiles" not in infer


def test_failures_come_back_as_errors():
    r = bench_measure.measure(spec(batch=0))
    assert set(r) == {"error"} and r["error"]


def test_time_calls_counts_first_warmup_and_timed_calls():
    calls, synced = [], []
    r = bench_measure.time_calls(lambda: calls.append(1) or len(calls), synced.append,
                                 warmup=2, repeats=3)
    assert len(calls) == 6 and synced == [1, 2, 3, 4, 5, 6]
    assert len(r["times_s"]) == 3 and r["first_s"] >= 0


def test_random_data_is_full_windows_of_the_encodings_shape():
    inputs, targets, lengths = bench_measure.random_data(spec(batch=3, steps=7))
    assert inputs.shape == (3, 7, 176) and inputs.dtype.name == "uint8" and inputs.max() <= 1
    assert targets.shape == (3, 7, 88) and 0 <= targets.min() and targets.max() <= 1
    assert lengths.tolist() == [7, 7, 7]


@pytest.mark.parametrize("precision, tf32", [(None, True), ("default", True), ("high", True),
                                             ("highest", False)])
def test_torch_tf32_follows_the_configs_precision(precision, tf32):
    assert bench_measure.torch_tf32(ModelConfig(precision=precision)) is tf32
