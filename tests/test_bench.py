"""Tests of the benchmark (experiments/bench.py) and its PyTorch reference network.

Tiny sizes on the CPU. The PyTorch tests need torch (benchmark-only:
``pip install -r requirements-bench.txt``); CI installs only requirements.txt, so there they
are skipped with that reason.
"""

import glob
import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

from experiments import bench
from stylenet_jax import batching, optim, training
from stylenet_jax.model import ModelConfig, StyleNet, count_params

TORCH_SKIP = ("torch not installed: it is a benchmark-only dependency (pip install -r "
              "requirements-bench.txt); CI installs only requirements.txt, so these tests are "
              "skipped there")
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason=TORCH_SKIP)

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


# ----------------------------------------------------------------------------- the script


def test_end_to_end_in_process(tmp_path):
    text = run_bench(tmp_path, "--noisolate", "--epoch_seconds=90", "--note=tiny test")
    for section in SECTIONS:
        assert section in text, section
    assert "python -m experiments.bench --device=cpu" in text  # the command that produced it
    assert "| 2 x 10 |" in text and "failed" not in text
    for dist in ("| jax |", "| jaxlib |", "| flax |", "| torch |", "| Python |"):
        assert dist in text
    assert "process peak RSS" in text or "peak RSS" in text
    assert "PROJECTION" in text and "160 x 90 s" in text  # labelled as a projection
    assert "GPU figures: not measured; this session had no GPU" in text
    assert "- Note: tiny test" in text
    assert "(`--noisolate`)" in text
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
    assert bench.TORCH_MISSING in capsys.readouterr().err
    assert "measuring JAX only" in text
    assert "PyTorch steps/s" not in text and "| 2 x 10 |" in text
    assert "not measured on this cpu" in text.lower()  # no --epoch_seconds


def test_isolated_workers_and_profile(tmp_path):
    """Every measurement in a worker process (``--worker=SPEC``); the profile of the first
    batch size's JAX step is taken inside its worker and comes back in the result JSON."""
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
    assert "while" in section and "model.py:" in section  # labelled from the compiled HLO
    assert "of the measured step" in section and "of the median traced step" in section
    assert len(glob.glob(str(prof / "plugins" / "profile" / "*" / "*.json.gz"))) >= 1


def test_new_model_options_reach_the_jax_step(monkeypatch):
    """--unroll, --recurrence and --matmul_dtype end up in the ModelConfig of the project's
    train step (stopped there: what the fields do is the model's tests' business)."""
    from stylenet_jax import training as training_module

    seen = []

    def spy(model_config, tx, **kw):
        seen.append(model_config)
        raise RuntimeError("spy: stop before compiling")

    monkeypatch.setattr(training_module, "make_train_step", spy)
    spec = bench.Spec("jax", "train", 2, 6, "cpu", hidden_size=8, num_layers=1, keep_prob=1.0,
                      clip="per_tensor", clip_norm=10.0, learning_rate=1e-3, precision="fp32",
                      repeats=1, warmup=0, seed=0, unroll=2, recurrence="autodiff",
                      matmul_dtype="bfloat16")
    assert bench.measure(spec) == {"error": "RuntimeError: spy: stop before compiling"}
    assert [(c.unroll, c.recurrence, c.matmul_dtype) for c in seen] == [
        (2, "autodiff", "bfloat16")]


def test_flag_choices_are_the_models():
    from stylenet_jax import model

    assert bench.RECURRENCES == model.RECURRENCES
    assert bench.MATMUL_DTYPES == model.MATMUL_DTYPES


def test_parse_options_defaults_values_and_flagfile(tmp_path):
    o = bench.parse_options([])
    assert (o.device, o.batch_sizes, o.window, o.hidden_size, o.num_layers, o.repeats,
            o.warmup, o.isolate, o.unroll, o.recurrence, o.matmul_dtype, o.profile_dir,
            o.note, o.out) == ("auto", None, 200, 176, 3, None, None, True, 1, "custom_vjp",
                               "float32", "", (), bench.DEFAULT_OUT)
    o = bench.parse_options(["--batch_sizes=8,32", "--noisolate", "--note=a", "--note=b",
                             "--unroll=4", "--recurrence=autodiff", "--matmul_dtype=bfloat16"])
    assert o.batch_sizes == (8, 32) and not o.isolate and o.note == ("a", "b")
    assert (o.unroll, o.recurrence, o.matmul_dtype) == (4, "autodiff", "bfloat16")
    flagfile = tmp_path / "bench.flags"
    flagfile.write_text("--device=cpu\n--batch_sizes=4\n--skip_torch\n--window=50\n")
    o = bench.parse_options([f"--flagfile={flagfile}", "--window=20"])
    assert (o.device, o.batch_sizes, o.skip_torch, o.window) == ("cpu", (4,), True, 20)
    for bad in ("--batch_sizes=0", "--batch_sizes=a,b", "--window=0", "--keep_prob=1.5",
                "--keep_prob=0", "--matmul_dtype=float16", "--recurrence=scan", "--unroll=0",
                "--device=tpu", "--warmup=-1", "--no-isolate"):
        with pytest.raises(flags.Error):
            bench.parse_options([bad])


def test_command_help_and_usage_errors(tmp_path):
    done = bench_command("--help")
    assert "flags:" in done.stdout, done.stderr[-2000:]
    for flag in ("device", "batch_sizes", "window", "repeats", "warmup", "hidden_size",
                 "num_layers", "inference_steps", "out", "epoch_seconds", "cpu_threads",
                 "unroll", "recurrence", "matmul_dtype", "profile_dir", "keep_prob", "note",
                 "notes_file"):
        assert f"--{flag}:" in done.stdout, flag
    for flag in ("isolate", "skip_torch", "torch_fused_layers", "huge_pages"):
        assert f"--[no]{flag}:" in done.stdout, flag
    assert "--worker" not in done.stdout  # internal: only --helpfull lists it
    out = tmp_path / "never.md"
    for args, message in [(["--batch_sizes=0"], "batch sizes must be >= 1"),
                          (["--keep_prob=2"], "--keep_prob must be in (0, 1]"),
                          (["--matmul_dtype=fp16"], "matmul_dtype"),
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


def test_summaries_and_saturation():
    s = bench.summarize_times({"first_s": 3.0, "times_s": [1.0, 2.0, 1.5]}, 4, 100)
    assert s["s"] == 1.5 and s["sps"] == pytest.approx(400 / 1.5)
    assert s["sps_min"] == 200 and s["sps_max"] == 400 and s["compile_s"] == 1.5
    assert "saturates at about 32" in bench.saturation([(8, 100), (32, 190), (128, 200)])
    assert "not saturated" in bench.saturation([(8, 100), (32, 150), (128, 200)])
    assert "one batch size" in bench.saturation([(8, 100)])
    assert "already at its best at the smallest" in bench.saturation([(8, 200), (32, 190)])


# ----------------------------------------------------------------------------- same function


def _jax_params(config: ModelConfig, seed: int = 0):
    return training.init_params(config, jax.random.PRNGKey(seed))


def _inputs(n, t, seed=1):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, t, 176)) < 0.3).astype(np.float32) * rng.random((n, t, 176))
    return x.astype(np.float32)


@needs_torch
@pytest.mark.parametrize("fused", [False, True], ids=["per_layer", "fused_layers"])
def test_torch_reference_computes_the_jax_function(fused):
    import torch

    from experiments import torch_reference

    config = ModelConfig(num_styles=2, hidden_size=8, num_layers=3, keep_prob=0.8)
    params = _jax_params(config)
    x = _inputs(4, 10)
    lengths = np.array([10, 7, 1, 0], np.int32)  # full, padded, one step, empty
    want = np.asarray(StyleNet(config).apply({"params": params}, x, lengths, train=False)[0])
    for style in range(2):
        model = torch_reference.TorchStyleNet(8, 3, keep_prob=0.8, fused_layers=fused).eval()
        torch_reference.load_jax_params(model, jax.device_get(params), style)
        with torch.no_grad():
            got = model(torch.from_numpy(x), torch.from_numpy(lengths).long()).numpy()
            full = model(torch.from_numpy(x[:1])).numpy()  # lengths=None: the benchmark's path
        np.testing.assert_allclose(got, want[style], atol=1e-5, rtol=0)
        np.testing.assert_allclose(full, want[style][:1], atol=1e-5, rtol=0)
    head = training.select_head(params, 0)
    assert sum(p.numel() for p in model.trainable_parameters()) == count_params(head)


@needs_torch
@pytest.mark.parametrize("clip", ["per_tensor", "global"])
def test_torch_train_step_matches_the_project_step(clip):
    """Without dropout, three steps of the project's JAX train step and of the torch
    reference (masked MSE over padded rows, clipping and Adam) end at the same losses and
    parameters."""
    import torch

    from experiments import torch_reference

    # Gradient norms here are 5e-5..4e-3: 3e-4 clips some tensors and not others (and the
    # global norm); lr 1e-2 makes a wrong clip visible in the parameters after 3 steps.
    tconfig = training.TrainConfig(hidden_size=8, num_layers=2, keep_prob=1.0, clip=clip,
                                   clip_norm=3e-4, learning_rate=1e-2)
    config = tconfig.model_config(num_styles=1)
    tx = optim.make_optimizer(tconfig)
    state = training.init_state(config, tx, 0)
    model = torch_reference.TorchStyleNet(8, 2, keep_prob=1.0)
    torch_reference.load_jax_params(model, jax.device_get(state.params))
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=tconfig.learning_rate)
    torch_step = torch_reference.make_train_step(model, optimizer, clip, tconfig.clip_norm)

    n, t = 3, 10
    rng = np.random.default_rng(2)
    inputs = (rng.random((n, t, 176)) < 0.2).astype(np.uint8)
    targets = rng.random((n, t, 88), dtype=np.float32)
    lengths = np.array([10, 6, 3], np.int32)
    batch = batching.Batch(inputs, targets, lengths, np.zeros(n, np.int32), np.ones(n, bool))
    step = training.make_train_step(config, tx)
    tl = torch.from_numpy(lengths).long()
    for _ in range(3):
        state, metrics, _ = step(state, training.zero_metrics(1), batch, None)
        m = jax.device_get(metrics)
        jax_loss = float(m["se"].sum() / m["cells"].sum())
        torch_loss = torch_step(torch.from_numpy(inputs).float(), torch.from_numpy(targets),
                                tl, tl).item()
        assert torch_loss == pytest.approx(jax_loss, abs=1e-6)
    after = torch_reference.TorchStyleNet(8, 2, keep_prob=1.0)
    torch_reference.load_jax_params(after, jax.device_get(state.params))
    want = dict(after.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), want[name].detach().numpy(), atol=1e-5,
                                   rtol=0, err_msg=name)
    before = training.init_state(config, tx, 0).params
    moved = max(float(jnp.abs(a - b).max()) for a, b in
                zip(jax.tree.leaves(state.params), jax.tree.leaves(before)))
    assert moved > 1e-2  # the steps did change the parameters


@needs_torch
def test_torch_clip_per_tensor():
    import torch

    from experiments import torch_reference

    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.tensor([30.0, 40.0, 0.0]), torch.tensor([0.3, 0.4])
    torch_reference.clip_grads_([a, b], "per_tensor", 10.0)
    np.testing.assert_allclose(a.grad.numpy(), [6.0, 8.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [0.3, 0.4], rtol=1e-6)  # under the norm: kept


@needs_torch
def test_torch_autocast_bfloat16_runs_the_lstm_in_bfloat16():
    """What the report says of --matmul_dtype=bfloat16 on a CPU: under autocast, nn.LSTM's
    kernel (oneDNN's) gets bfloat16 input and weights, forward and backward; the loss, the
    parameters and their gradients stay float32."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from experiments import torch_reference

    torch.manual_seed(0)
    model = torch_reference.TorchStyleNet(8, 1)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    step = torch_reference.make_train_step(model, optimizer, "per_tensor", 10.0,
                                           autocast_dtype=torch.bfloat16)
    x = (torch.rand(2, 5, 176) < 0.1).float()
    y, n = torch.rand(2, 5, 88), torch.full((2,), 5)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        loss = step(x, y, n)
    rnn = [e for e in prof.events() if "rnn" in e.name or "lstm" in e.name]
    kernels = {e.name for e in rnn if e.input_dtypes[:3] == ["c10::BFloat16"] * 3}
    assert any("backward" not in k for k in kernels) and any("backward" in k for k in kernels), \
        {(e.name, tuple(e.input_dtypes[:3])) for e in rnn}
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32
               for p in model.trainable_parameters())
