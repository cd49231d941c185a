"""Tests of the benchmark's report (experiments/bench_report.py) on made-up results: no
measurement runs here."""

import dataclasses

import pytest

from experiments import bench, bench_report
from stylenet_jax.config import ModelConfig, OptimConfig


def options(*argv):
    return bench.parse_options(["--batch_sizes=8,32", "--repeats=3", "--warmup=1", *argv])


def results(device="cpu", with_torch=True, **changes):
    jax_r = {"first_s": 2.0, "times_s": [0.1, 0.2, 0.1], "peak_bytes": 2**30, "compiles": 1}
    torch_r = {"first_s": 0.5, "times_s": [0.2, 0.2, 0.3], "peak_bytes": 2**29}
    train = {8: {"jax": jax_r, "torch": torch_r},
             32: {"jax": {"error": "XlaRuntimeError: out of memory"}, "torch": torch_r}}
    base = bench_report.Results(
        device=device, device_note=f"--device={device}", with_torch=with_torch,
        torch_note="torch 2.13.0", train=train, infer={"jax": jax_r, "torch": torch_r},
        env={"jax_device": "cpu: cpu", "torch_device": "cpu", "torch_threads": 1},
        started="2026-01-01 00:00 UTC", elapsed_s=12.0, load=("0.5 / 0.5 / 0.5",) * 2)
    return dataclasses.replace(base, **changes)


def test_summaries_and_saturation():
    s = bench_report.summarize_times({"first_s": 3.0, "times_s": [1.0, 2.0, 1.5]}, 4, 100)
    assert s["s"] == 1.5 and s["sps"] == pytest.approx(400 / 1.5)
    assert s["sps_min"] == 200 and s["sps_max"] == 400 and s["compile_s"] == 1.5
    assert bench_report.summarize_times({"error": "x"}, 4, 100) is None
    assert "saturates at about 32" in bench_report.saturation([(8, 100), (32, 190), (128, 200)])
    assert "not saturated" in bench_report.saturation([(8, 100), (32, 150), (128, 200)])
    assert "one batch size" in bench_report.saturation([(8, 100)])
    assert "already at its best at the smallest" in bench_report.saturation([(8, 200), (32, 190)])


def test_report_tables_and_sections():
    text = bench_report.render(options("--note=hello"), ["--batch_sizes=8,32"], results())
    assert "python -m experiments.bench --batch_sizes=8,32" in text
    assert ("| 8 x 200 | 16,000 (8,000-16,000) | 100.0 ms (100.0 ms-200.0 ms) | 1.90 s "
            "| 1,024 MiB |") in text
    assert "| 32 x 200 | failed: XlaRuntimeError: out of memory |" in text
    assert "JAX / PyTorch throughput" in text and "| 2.00 (1.00-3.00) |" in text
    assert "JAX / PyTorch inference throughput: 2.00" in text
    assert "- Note: hello" in text and "## Analysis" not in text
    assert "PROJECTION" not in text and "Not measured on this cpu" in text
    assert "compiled more than once" not in text


def test_report_without_torch_with_notes_and_recompiles():
    r = results(with_torch=False, torch_note="skipped (--skip_torch)")
    r.train[8]["jax"]["compiles"] = 2
    text = bench_report.render(options("--epoch_seconds=90"), [], r, notes="### Mine\n\nok\n",
                               notes_path="results/notes.md")
    assert "PyTorch steps/s" not in text and "Ratio > 1" not in text
    assert "| torch |" in text and "(not measured: skipped (--skip_torch))" in text
    assert "compiled more than once at batch [8]" in text
    assert "Hand-written, from `results/notes.md`" in text and "### Mine" in text
    assert "160 x 90 s = 4.0 h" in text


def test_setup_describes_the_config():
    text = bench_report.render(options(), [], results())
    assert ("interpretation LSTM 176 -> 176, 3 bidirectional LSTM layers of 176, linear 352 "
            "-> 88, sigmoid") in text
    assert "MSE over every cell of real steps; each tensor's gradient norm clipped to 10" in text
    assert "`--precision` unset" in text and "(no effect on a CPU)" in text
    text = bench_report.render(
        options("--precision=highest", "--nobidirectional", "--nointerpretation_layer",
                "--loss=onset", "--clip=global", "--matmul_dtype=bfloat16",
                "--torch_fused_layers"), [], results(device="gpu"))
    assert "no interpretation layer, 3 unidirectional LSTM layers of 176, linear 176 -> 88" in text
    assert "MSE over the onset cells of real steps (`--loss=onset`); global gradient norm" in text
    assert ("`--precision=highest`: true fp32 in both frameworks (JAX precision 'highest'; "
            "PyTorch `allow_tf32` off for matmuls and cuDNN)") in text
    assert "called `--precision=fp32`." in text  # the flag's old meaning, for old reports
    assert "torch.autocast('cuda', dtype=torch.bfloat16)" in text
    assert "ONE nn.LSTM call" in text and "The tables above are GPU figures." in text


def test_describe_precision():
    high = bench_report.describe_precision(ModelConfig(precision="high"), "gpu")
    assert high.startswith("`--precision=high`: each framework's TF32") and "allow_tf32` on" in high
    assert "--precision=tf32" in high
    assert bench_report.describe_loss(OptimConfig(clip="none", loss="active")).startswith(
        "MSE over the sounding cells")


def test_profile_section_when_profiling_failed():
    r = results()
    r.train[8]["jax"]["profile"] = {"error": "RuntimeError: no trace"}
    text = bench_report.render(options("--profile_dir=/tmp/p"), [], r)
    assert "## Where the time goes (JAX train step, 8 x 200)" in text
    assert "Not profiled: RuntimeError: no trace." in text
