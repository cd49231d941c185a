"""Tests of the benchmark command (experiments/bench.py): its flags, which are the shared
config's where they name a setting, and whole runs at tiny sizes on the CPU. The measurements
are tested in test_bench_measure.py, the report's text in test_bench_report.py, the PyTorch
network in test_torch_reference.py.
"""

import glob
import importlib.util
import os
import subprocess
import sys

import pytest
from absl import flags

from experiments import bench, bench_machine
from stylenet_jax import config_flags
from stylenet_jax.config import ModelConfig, OptimConfig

HAS_TORCH = importlib.util.find_spec("torch") is not None
TINY = ["--device=cpu", "--batch_sizes=2", "--window=10", "--hidden_size=8", "--num_layers=1",
        "--repeats=2", "--warmup=1", "--inference_steps=12"]
SECTIONS = ("# Performance: stylenet-jax beside PyTorch", "## Machine and versions", "## Setup",
            "## Training step", "## Throughput saturation", "## Inference",
            "## Full paper schedule (160 epochs", "## GPU")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_bench(tmp_path, *extra):
    """The command in this process: its own flag definitions parse ``argv`` (absl flags are
    process-global, so a fresh FlagValues), then ``bench.run``."""
    out = tmp_path / "perf.md"
    argv = [*TINY, f"--out={out}", *extra]
    assert bench.run(bench.parse_options(argv), argv) == 0
    return out.read_text()


def bench_command(*args, timeout=120):
    """``python -m experiments.bench ARGS`` as a subprocess."""
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.bench", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- flags


def test_network_and_optimizer_flags_are_the_configs():
    """The benchmark's network, optimizer, window and seed come from the config's flags
    (one definition, same names, choices and doc lines as experiments.train), and reach
    ``Options`` as a one-head ``ModelConfig`` and an ``OptimConfig``."""
    o = bench.parse_options([
        "--hidden_size=8", "--num_layers=2", "--nobidirectional", "--nointerpretation_layer",
        "--keep_prob=0.5", "--unroll=4", "--precision=highest", "--recurrence=autodiff",
        "--matmul_dtype=bfloat16", "--learning_rate=0.01", "--clip=global", "--clip_norm=5",
        "--loss=onset", "--window=50", "--seed=3"])
    assert o.model == ModelConfig(num_styles=1, hidden_size=8, num_layers=2,
                                  bidirectional=False, use_interpretation_layer=False,
                                  keep_prob=0.5, unroll=4, precision="highest",
                                  recurrence="autodiff", matmul_dtype="bfloat16")
    assert o.optim == OptimConfig(learning_rate=0.01, clip="global", clip_norm=5.0, loss="onset")
    assert (o.window, o.seed) == (50, 3)
    defaults = bench.parse_options([])
    assert defaults.model == ModelConfig(num_styles=1) and defaults.optim == OptimConfig()
    ours, theirs = flags.FlagValues(), flags.FlagValues()
    bench.define_flags(ours)
    config_flags.define_flags(theirs)
    for name in ("hidden_size", "precision", "recurrence", "matmul_dtype", "clip", "loss",
                 "window", "seed"):
        assert ours[name].help == theirs[name].help, name
        assert ours[name].default == theirs[name].default, name
    assert ours["precision"].parser.enum_values == ["default", "high", "highest"]
    for bad in ("--precision=fp32", "--precision=tf32", "--matmul_dtype=float16",
                "--recurrence=scan"):
        with pytest.raises(flags.Error):
            bench.parse_options([bad])
    for bad in ("--keep_prob=1.5", "--keep_prob=0", "--unroll=0", "--window=0"):
        with pytest.raises(ValueError):  # the config's own checks
            bench.parse_options([bad])


def test_parse_options_defaults_values_and_flagfile(tmp_path):
    o = bench.parse_options([])
    assert (o.device, o.batch_sizes, o.window, o.repeats, o.warmup, o.isolate, o.profile_dir,
            o.note, o.out) == ("auto", None, 200, None, None, True, "", (), bench.DEFAULT_OUT)
    o = bench.parse_options(["--batch_sizes=8,32", "--noisolate", "--note=a", "--note=b"])
    assert o.batch_sizes == (8, 32) and not o.isolate and o.note == ("a", "b")
    flagfile = tmp_path / "bench.flags"
    flagfile.write_text("--device=cpu\n--batch_sizes=4\n--skip_torch\n--window=50\n"
                        "--hidden_size=16\n")
    o = bench.parse_options([f"--flagfile={flagfile}", "--window=20"])
    assert (o.device, o.batch_sizes, o.skip_torch, o.window, o.model.hidden_size) == (
        "cpu", (4,), True, 20, 16)
    for bad in ("--batch_sizes=0", "--batch_sizes=a,b", "--device=tpu", "--warmup=-1",
                "--no-isolate"):
        with pytest.raises(flags.Error):
            bench.parse_options([bad])


def test_command_help_and_usage_errors(tmp_path):
    done = bench_command("--help")
    assert "flags:" in done.stdout, done.stderr[-2000:]
    for flag in ("device", "batch_sizes", "window", "repeats", "warmup", "hidden_size",
                 "num_layers", "inference_steps", "out", "epoch_seconds", "cpu_threads",
                 "unroll", "recurrence", "matmul_dtype", "precision", "clip", "loss",
                 "profile_dir", "keep_prob", "note", "notes_file", "seed", "devices"):
        assert f"--{flag}:" in done.stdout, flag
    for flag in ("isolate", "skip_torch", "torch_fused_layers", "huge_pages", "bidirectional",
                 "interpretation_layer"):
        assert f"--[no]{flag}:" in done.stdout, flag
    out = tmp_path / "never.md"
    for args, message in [(["--batch_sizes=0"], "batch sizes must be >= 1"),
                          (["--keep_prob=2"], "keep_prob must be in (0, 1]"),
                          (["--matmul_dtype=fp16"], "matmul_dtype"),
                          (["--precision=fp32"], "precision"),
                          (["--device=cpu", "--noisolate", "--cpu_threads=1"],
                           "--cpu_threads needs --isolate"),
                          (["--device=cpu", "stray"], "unexpected arguments: stray"),
                          (["--device=cpu", "--notes_file=/no/such.md"],
                           "--notes_file: no such file")]:
        done = bench_command(*args, f"--out={out}")
        assert done.returncode == 2, (args, done.stderr[-2000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()


# ----------------------------------------------------------------------------- whole runs


@pytest.mark.slow
def test_end_to_end_in_process(tmp_path):
    text = run_bench(tmp_path, "--noisolate", "--epoch_seconds=90", "--note=tiny test",
                     "--batch_sizes=2,3")
    for section in SECTIONS:
        assert section in text, section
    assert "python -m experiments.bench --device=cpu" in text  # the command that produced it
    assert "| 2 x 10 |" in text and "| 3 x 10 |" in text and "failed" not in text
    assert "compiled more than once" not in text
    for dist in ("| jax |", "| jaxlib |", "| flax |", "| torch |", "| Python |"):
        assert dist in text
    assert "process peak RSS" in text or "peak RSS" in text
    assert "PROJECTION" in text and "160 x 90 s" in text  # labelled as a projection
    assert "GPU figures: not measured; this session had no GPU" in text
    assert "- Note: tiny test" in text
    assert "(`--noisolate`)" in text
    assert "interpretation LSTM 176 -> 8, 1 bidirectional LSTM layers of 8" in text
    assert ("`--unroll=1` (`lax.scan` unroll of the LSTM time loops), `--recurrence=custom_vjp` "
            "(the project's hand-written LSTM backward pass), `--matmul_dtype=float32`") in text
    assert "Where the time goes" not in text  # no --profile_dir
    if HAS_TORCH:
        assert "PyTorch steps/s" in text and "JAX / PyTorch" in text


@pytest.mark.slow
def test_notes_file_and_allocator_are_reported(tmp_path, monkeypatch):
    notes = tmp_path / "notes.md"
    notes.write_text("### What dominates\n\nThe recurrence, measured.\n")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    text = run_bench(tmp_path, "--noisolate", "--skip_torch", "--inference_steps=0",
                     f"--notes_file={notes}")
    analysis = text.split("## Analysis\n")[1].split("\n## ")[0]
    assert "### What dominates" in analysis and "The recurrence, measured." in analysis
    assert "`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` for every measurement, both frameworks" in text
    monkeypatch.delenv("GLIBC_TUNABLES")
    text = run_bench(tmp_path, "--noisolate", "--skip_torch", "--inference_steps=0")
    assert "## Analysis" not in text and "the platform's default malloc" in text


def test_torch_missing_measures_jax_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    text = run_bench(tmp_path, "--noisolate", "--inference_steps=0")
    assert bench_machine.TORCH_MISSING in capsys.readouterr().err
    assert "measuring JAX only" in text
    assert "PyTorch steps/s" not in text and "| 2 x 10 |" in text
    assert "not measured on this cpu" in text.lower()  # no --epoch_seconds


@pytest.mark.slow
def test_isolated_workers_and_profile(tmp_path):
    """Every measurement in a worker process (``python -m experiments.bench_measure SPEC``);
    the profile of the first batch size's JAX step is taken inside its worker and comes back
    in the result JSON, labelled from the compiled HLO of ``train_steps.train_step``."""
    prof = tmp_path / "prof"
    text = run_bench(tmp_path, "--skip_torch", "--inference_steps=0", "--cpu_threads=1",
                     f"--profile_dir={prof}")
    assert "| 2 x 10 |" in text and "failed" not in text
    assert "pinned to 1 of" in text and "skipped (--skip_torch)" in text
    assert "## Where the time goes (JAX train step, 2 x 10)" in text  # the first batch size
    section = text.split("## Where the time goes")[1].split("\n## ")[0]
    assert "Not profiled" not in section, section
    assert "| XLA op | from (JAX op_name) | source | ms / step | calls / step | share of step |" \
        in section
    assert "| 10 |" in section  # an op of a scan body: once per time step of the window
    assert "while" in section and ("lstm.py:" in section or "model.py:" in section)
    assert "of the measured step" in section and "of the median traced step" in section
    assert len(glob.glob(str(prof / "plugins" / "profile" / "*" / "*.json.gz"))) >= 1
