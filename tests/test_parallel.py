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


def test_a_data_parallel_step_is_the_single_device_step(measured):
    assert measured["devices"] == 4
    assert measured["step_rows_8"] < 1e-5
    assert measured["metrics_rows_8"] < 1e-3  # sums of squared errors, summed in another order


def test_rows_the_devices_do_not_divide_are_padded_with_rows_that_count_for_nothing(measured):
    assert measured["step_rows_6"] < 1e-5 and measured["metrics_rows_6"] < 1e-3


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
