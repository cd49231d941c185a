"""End-to-end tests of ``python -m experiments.train`` (run as subprocesses: absl flags are
process-global, and data_prep.build defines some of the same names)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = "experiments/configs/stylenet.flags"
TINY = "experiments/configs/tiny.flags"


def train(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def config(*args: str) -> dict:
    done = train(*args, "--workdir=unused", "--print_config")
    assert done.returncode == 0, done.stderr[-2000:]
    nested = json.loads(done.stdout)  # {"model": {...}, "optim": ..., "data": ..., "schedule": ...}
    assert set(nested) == {"model", "optim", "data", "schedule"}
    return {k: v for group in nested.values() for k, v in group.items()}


def test_paper_flagfile():
    c = config(f"--flagfile={PAPER}")
    assert {k: c[k] for k in ("hidden_size", "num_layers", "bidirectional",
                              "use_interpretation_layer", "keep_prob", "learning_rate", "clip",
                              "clip_norm", "window", "songs_per_batch", "num_epochs", "loss",
                              "carry_state")} == {
        "hidden_size": 176, "num_layers": 3, "bidirectional": True,
        "use_interpretation_layer": True, "keep_prob": 0.8, "learning_rate": 1e-3,
        "clip": "per_tensor", "clip_norm": 10.0, "window": 200, "songs_per_batch": 4,
        "num_epochs": 160, "loss": "full", "carry_state": False}


def test_tiny_flagfile_and_overrides():
    c = config(f"--flagfile={TINY}", "--num_epochs=3", "--carry_state", "--clip=global")
    assert c["hidden_size"] == 32 and c["window"] == 50  # tiny's own values
    assert c["keep_prob"] == 0.8 and c["clip_norm"] == 10.0  # inherited from the paper's file
    assert c["num_epochs"] == 3 and c["carry_state"] and c["clip"] == "global"  # overrides
    c = config(f"--flagfile={TINY}", "--recurrence=autodiff", "--matmul_dtype=bfloat16")
    assert (c["recurrence"], c["matmul_dtype"]) == ("autodiff", "bfloat16")


def test_enum_flags_offer_exactly_the_models_options():
    from stylenet_jax import config as config_module

    for flag, options in (("recurrence", config_module.RECURRENCES),
                          ("matmul_dtype", config_module.MATMUL_DTYPES)):
        done = train(f"--flagfile={TINY}", "--workdir=unused", f"--{flag}=nonsense")
        assert done.returncode != 0
        offered = done.stderr.split("one of <")[-1].split(">")[0].split("|")
        assert sorted(offered) == sorted(options), (flag, done.stderr[-500:])


def test_bad_flag_value_is_a_usage_error():
    done = train(f"--flagfile={TINY}", "--workdir=unused", "--clip=sideways")
    assert done.returncode != 0 and "clip" in done.stderr
    done = train(f"--flagfile={TINY}", "--workdir=unused", "--window=0", "--print_config")
    assert done.returncode != 0 and "window must be >= 1" in done.stderr


def test_bad_workdirs_flagfiles_and_settings_are_one_line_and_status_2(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "binary.flags").write_bytes(bytes(range(256)))
    for args, says in (
            ([f"--workdir={tmp_path}/a_file"], "is a file, not a folder"),
            ([f"--workdir={tmp_path}/a_file/run"], "cannot make that folder"),
            ([f"--workdir={tmp_path}/w", f"--flagfile={tmp_path}/binary.flags"],
             "--flagfile is not text"),
            ([f"--workdir={tmp_path}/w", "--num_epochs=0"], "num_epochs must be >= 1"),
            ([f"--workdir={tmp_path}/w", "--keep_checkpoints=0"], "keep_checkpoints must be"),
            ([f"--workdir={tmp_path}/w", "--synthetic_steps=0"], "synthetic_steps must be")):
        done = train(f"--flagfile={TINY}", "--nohuge_pages", *args)
        assert done.returncode == 2, (args, done.stderr[-1000:])
        assert "Traceback" not in done.stderr and says in done.stderr, (args, done.stderr)
    assert not (tmp_path / "w").exists()  # nothing made for a refused run


def test_help_lists_every_flag():
    done = train("--help")  # absl exits 1 after printing the help
    assert "flags:" in done.stdout, done.stderr[-2000:]
    from stylenet_jax import config_flags

    settings = [name for _, _, name in config_flags.fields()]
    assert len(settings) > 25 and "interpretation_layer" in settings
    for flag in settings + ["workdir", "huge_pages", "export", "print_config"]:
        assert f"--{flag}" in done.stdout or f"--[no]{flag}" in done.stdout, flag


@pytest.mark.slow
def test_tiny_run_builds_data_and_leaves_checkpoints_metrics_snapshot(tmp_path):
    """The acceptance run: tiny.flags on data it generates and builds itself."""
    work = str(tmp_path / "run")
    done = train(f"--flagfile={TINY}", f"--workdir={work}", "--noprogress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.isfile(os.path.join(work, "data", "dataset", "manifest.json"))
    kept = sorted(int(d) for d in os.listdir(os.path.join(work, "checkpoints")))
    evals = [r for r in map(json.loads, open(os.path.join(work, "metrics.jsonl")))
             if r["kind"] == "eval"]
    best = min(evals, key=lambda r: r["val_loss"])["step"]
    newest = sorted(r["step"] for r in evals)[-3:]  # --keep_checkpoints=3, plus the best
    assert kept == sorted(set(newest) | {best})
    assert os.path.isfile(os.path.join(work, "snapshots", "epoch_0008.png"))
    records = [json.loads(x) for x in open(os.path.join(work, "metrics.jsonl"))]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["epoch"] for r in evals] == list(range(1, 9))
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert "train step compiled 1 time(s)" in done.stderr
    assert "Unable to initialize backend" not in done.stderr  # JAX's TPU probe is quiet
    assert "orbax" not in done.stderr.lower()  # so is Orbax's chatter
    if sys.platform == "linux" and "GLIBC_TUNABLES" not in os.environ:
        assert done.stderr.count("re-executing with GLIBC_TUNABLES") == 1  # --huge_pages
    with np.load(os.path.join(work, "inference.npz")) as z:
        assert all(z[k].dtype == np.float16 for k in z.files if k != "__meta__")


@pytest.mark.slow
def test_cli_resumes_and_stops_on_nan(tmp_path):
    work = str(tmp_path / "run")
    common = [f"--flagfile={TINY}", f"--workdir={work}", "--noprogress",
              "--snapshot_every_epochs=0"]
    done = train(*common, "--num_epochs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    # Resume for 1 more epoch: continues from epoch 2 on the data already built.
    done = train(*common, "--num_epochs=3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed" in done.stderr
    records = [json.loads(x) for x in open(os.path.join(work, "metrics.jsonl"))]
    assert [r["epoch"] for r in records if r["kind"] == "eval"] == [1, 2, 3]

    # A NaN stops the run with a one-line error and leaves no new checkpoint.
    before = sorted(os.listdir(os.path.join(work, "checkpoints")))
    last_step = max(r["step"] for r in records)
    done = train(*common, "--num_epochs=5", f"--debug_nan_step={last_step + 1}")
    assert done.returncode != 0
    assert "error: non-finite loss" in done.stderr
    assert sorted(os.listdir(os.path.join(work, "checkpoints"))) == before
