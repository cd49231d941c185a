"""Tests of the benchmark's data-parallel sweep (``experiments.bench --devices=1,2``,
experiments/bench_devices.py): the flag, the worker's forced host devices, the refusals, the
report section from made-up numbers, and one real tiny isolated sweep on the CPU."""

import dataclasses
import re

import pytest
from absl import flags

from experiments import bench, bench_devices, bench_machine, bench_measure, bench_report
from stylenet_jax.config import ModelConfig, OptimConfig

TINY = ["--device=cpu", "--batch_sizes=4", "--window=10", "--hidden_size=8", "--num_layers=1",
        "--repeats=2", "--warmup=0", "--inference_steps=0", "--skip_torch", "--nobidirectional",
        "--nointerpretation_layer"]


def section(text):
    assert bench_devices.TITLE in text
    return text.split(bench_devices.TITLE)[1].split("\n## ")[0]


def rows(text):
    """{(batch, N): cells after N} of the section's table."""
    found = {}
    for line in section(text).splitlines():
        m = re.match(r"\| (\d+) x \d+ \| (\d+) \| (.*) \|$", line)
        if m:
            found[int(m[1]), int(m[2])] = [c.strip() for c in m[3].split("|")]
    return found


def test_devices_flag_parses_a_comma_list():
    assert bench.parse_options([]).devices == ()
    o = bench.parse_options(["--devices=1,2,4", "--batch_sizes=32"])
    assert o.devices == (1, 2, 4) and o.batch_sizes == (32,)
    assert bench.parse_options(["--devices=2"]).devices == (2,)
    for bad in ("--devices=0", "--devices=1,-2", "--devices=a"):
        with pytest.raises(flags.Error):
            bench.parse_options([bad])
    with pytest.raises(flags.Error, match="device counts must be >= 1"):
        bench.parse_options(["--devices=0"])


def test_cpu_workers_get_forced_host_devices(monkeypatch):
    flag = bench_measure.FORCE_HOST_DEVICES
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_foo=1 {flag}=8")
    env = bench_measure.worker_environment("cpu", 3)
    assert env["XLA_FLAGS"] == f"--xla_cpu_foo=1 {flag}=3" and env["JAX_PLATFORMS"] == "cpu"
    assert bench_measure.worker_environment("cpu")["XLA_FLAGS"] == f"--xla_cpu_foo=1 {flag}=8"
    assert bench_measure.worker_environment("gpu", 2)["XLA_FLAGS"] == f"--xla_cpu_foo=1 {flag}=8"
    monkeypatch.delenv("XLA_FLAGS")
    assert bench_measure.worker_environment("cpu", 2)["XLA_FLAGS"] == f"{flag}=2"
    assert "XLA_FLAGS" not in bench_measure.worker_environment("cpu")
    s = bench_measure.Spec("jax", "train", 4, 10, "cpu", ModelConfig(num_styles=1),
                           OptimConfig(), repeats=1, warmup=0, devices=2)
    assert bench_measure.Spec.from_json(s.to_json()) == s


def test_refusals_are_one_line(monkeypatch, capsys, tmp_path):
    assert bench_devices.refusal("cpu", (), isolate=False) is None
    assert bench_devices.refusal("cpu", (1, 2, 64), isolate=True) is None
    assert "needs --isolate" in bench_devices.refusal("cpu", (2,), isolate=False)
    monkeypatch.setattr(bench_devices, "gpu_count", lambda: 2)
    assert bench_devices.refusal("gpu", (1, 2), isolate=True) is None
    assert bench_devices.refusal("gpu", (1, 4), isolate=True) == (
        "--devices=4, but JAX sees 2 GPU(s) on this machine")
    monkeypatch.setattr(bench_machine, "resolve_device", lambda requested: ("gpu", "--device=gpu"))
    out = tmp_path / "never.md"
    argv = ["--device=gpu", "--devices=1,4", f"--out={out}"]
    assert bench.run(bench.parse_options(argv), argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --devices=4, but JAX sees 2 GPU(s) on this machine"]
    assert not out.exists()


def made_up(device="cpu"):
    def result(median, **extra):
        return {"first_s": 1.0, "times_s": [median, median * 1.1, median * 0.9], **extra}

    placed = lambda n: {"devices": n, "batch_on": n, "replicated_on": n}  # noqa: E731
    devices = {8: {1: result(0.1, data_parallel=placed(1)), 2: result(0.2, data_parallel=placed(2)),
                   3: result(0.4, data_parallel={"batch_on": 1, "replicated_on": 3})},
               32: {1: result(0.2), 2: {"error": "ValueError: boom"}, 3: result(0.2, compiles=2)}}
    return bench_report.Results(
        device=device, device_note=f"--device={device}", with_torch=False,
        torch_note="skipped (--skip_torch)", train={b: {"jax": result(0.1)} for b in (8, 32)},
        infer={}, env={}, started="2026-01-01 00:00 UTC", elapsed_s=1.0,
        load=("0.5 / 0.5 / 0.5",) * 2, devices=devices)


def test_report_section_from_given_numbers():
    o = bench.parse_options(["--batch_sizes=8,32", "--devices=1,2,3", "--repeats=3",
                             "--inference_steps=0", "--skip_torch"])
    text = bench_report.render(o, [], made_up())
    body = section(text)
    assert bench_devices.FORCED_HOST_LABEL in body and "not a GPU figure" in body
    assert "N forced CPU host devices share this machine's cores; this shows the partitioning " \
           "works and what it costs, not a GPU figure" in body
    assert text.index("## Throughput saturation") < text.index(bench_devices.TITLE) \
        < text.index("## Inference")
    assert "the global batch is the batch size measured" in body
    table = rows(text)
    assert set(table) == {(b, n) for b in (8, 32) for n in (1, 2, 3)}
    assert table[8, 1] == ["8", "16,000 (14,545-17,778)", "100.0 ms", "1.00x"]
    assert table[8, 2] == ["4", "8,000 (7,273-8,889)", "200.0 ms", "0.50x"]
    assert table[8, 3][0] == "3 (+1 empty padding rows in all)" and table[8, 3][-1] == "0.25x"
    assert table[32, 2] == ["16", "failed: ValueError: boom", "-", "-"]
    assert table[32, 3][-1] == "1.00x"
    assert "Warning: at N = 3, batch 8: batch on 1 devices, parameters replicated on 3." in body
    assert "Warning: at N = 3, batch 32: the step compiled 2 times." in body
    gpu = section(bench_report.render(o, [], made_up("gpu")))
    assert "Real GPUs: the first N" in gpu and bench_devices.FORCED_HOST_LABEL not in gpu
    o = dataclasses.replace(o, devices=(2,))
    assert "No N = 1 in `--devices`: no speed-up to show." in bench_report.render(o, [], made_up())
    assert bench_devices.TITLE not in bench_report.render(
        dataclasses.replace(o, devices=()), [], made_up())


@pytest.mark.slow  # in CI (--runslow); keeps the default suite near 10 min
def test_a_real_tiny_sweep_on_one_and_two_forced_host_devices(tmp_path, monkeypatch):
    """Each N in its own worker process with N forced CPU host devices: the batch really is
    spread over N devices, the parameters replicated on all N, and both rows have steps/s."""
    seen = {}
    original = bench_devices.render

    def spy(options, results):
        seen["devices"] = results.devices
        return original(options, results)

    monkeypatch.setattr(bench_devices, "render", spy)
    out = tmp_path / "perf.md"
    argv = [*TINY, "--devices=1,2", f"--out={out}"]
    assert bench.run(bench.parse_options(argv), argv) == 0
    text = out.read_text()
    table = rows(text)
    assert set(table) == {(4, 1), (4, 2)}, section(text)
    for n, per in ((1, "4"), (2, "2")):
        cells = table[4, n]
        assert cells[0] == per and float(cells[1].split()[0].replace(",", "")) > 0, cells
        placed = seen["devices"][4][n]["data_parallel"]
        assert placed["device_count"] == n and placed["platform"] == "cpu"
        assert placed["batch_on"] == n and placed["replicated_on"] == n
        assert placed["rows_per_device"] == 4 // n
    assert table[4, 1][-1] == "1.00x" and table[4, 2][-1].endswith("x")
    assert bench_devices.FORCED_HOST_LABEL in section(text) and "Warning" not in section(text)
