"""Data-parallel training (stylenet_jax.parallel) on 4 forced CPU devices, in a subprocess:
XLA reads the device count when JAX starts."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from stylenet_jax import batching
from stylenet_jax.parallel import DataParallel

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               PYTHONPATH=os.pathsep.join([REPO, TESTS]))
    done = subprocess.run([sys.executable, os.path.join(TESTS, "parallel_check.py"),
                           str(tmp_path_factory.mktemp("parallel"))], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # in CI (--runslow); keeps the default suite near 10 min
def test_a_data_parallel_step_is_the_single_device_step(measured):
    assert measured["devices"] == 4
    assert measured["step_rows_8"] < 1e-5
    assert measured["metrics_rows_8"] < 1e-3  # sums of squared errors, summed in another order


@pytest.mark.slow  # in CI (--runslow); keeps the default suite near 10 min
def test_rows_the_devices_do_not_divide_are_padded_with_rows_that_count_for_nothing(measured):
    assert measured["step_rows_6"] < 1e-5 and measured["metrics_rows_6"] < 1e-3


@pytest.mark.slow  # in CI (--runslow); keeps the default suite near 10 min
def test_a_run_on_four_devices_compiles_once_keeps_parameters_replicated_and_resumes(measured):
    assert measured["run_difference"] < 1e-4  # 2 epochs of steps, float sums reordered
    assert measured["run_compiles"] == 1
    assert measured["replicated_on"] == 4
    assert measured["resumed_epoch"] == 3 and measured["resume_difference"] == 0.0


def test_pad_batch_appends_empty_rows_of_the_batch_style():
    parallel = DataParallel()
    n = parallel.num_devices
    rows = 2 * n + 1 if n > 1 else 3
    batch = batching.Batch(np.ones((rows, 4, 176), np.uint8), np.ones((rows, 4, 88), np.float32),
                           np.full((rows,), 4, np.int32), np.full((rows,), 1, np.int32),
                           np.zeros((rows,), bool))
    padded = parallel.pad_batch(batch)
    assert padded.inputs.shape[0] == parallel.padded_rows(rows)
    assert padded.inputs.shape[0] % n == 0
    extra = slice(rows, None)
    assert not padded.inputs[extra].any() and not padded.lengths[extra].any()
    assert (padded.styles == 1).all() and padded.reset[extra].all()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "experiments.train", *args], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def train_on_processes(count: int, *args: str) -> None:
    port = free_port()
    extra = [] if count == 1 else [f"--coordinator_address=localhost:{port}",
                                   f"--num_processes={count}"]
    runs = [train(*args, *extra, *([f"--process_id={i}"] if count > 1 else []))
            for i in range(count)]
    for run in runs:
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, out[-3000:]


@pytest.mark.slow
def test_two_processes_train_as_one_and_resume(tmp_path):
    """jax.distributed on localhost (CPU collectives through gloo): two processes, one CPU
    device each, end with the parameters of one process on the same global batches; stopped
    after epoch 1 and restarted, they resume and end where an uninterrupted pair ends."""
    import jax

    from dataset_factory import write_dataset
    from stylenet_jax import checkpoints

    data = write_dataset(str(tmp_path / "data"))
    common = ["--flagfile=experiments/configs/tiny.flags", f"--data_dir={data}", "--noprogress",
              "--nohuge_pages", "--window=16", "--windows_per_batch=8", "--songs_per_batch=2",
              "--snapshot_every_epochs=0", "--keep_prob=1.0"]
    train_on_processes(1, *common, "--num_epochs=2", f"--workdir={tmp_path}/one")
    train_on_processes(2, *common, "--num_epochs=2", f"--workdir={tmp_path}/two")
    train_on_processes(2, *common, "--num_epochs=1", f"--workdir={tmp_path}/resumed")
    train_on_processes(2, *common, "--num_epochs=2", f"--workdir={tmp_path}/resumed")
    params = {name: checkpoints.restore_params(str(tmp_path / name))[0]
              for name in ("one", "two", "resumed")}
    for a, b, c in zip(*(jax.tree.leaves(params[n]) for n in ("one", "two", "resumed"))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(b, c)
    lines = [json.loads(x) for x in open(tmp_path / "two" / "metrics.jsonl")]
    assert lines and [r["epoch"] for r in lines if r["kind"] == "eval"] == [1, 2]  # one writer
    assert (tmp_path / "two" / "inference.npz").is_file()
