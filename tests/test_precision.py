"""Tests of experiments.precision (fp32 vs bf16 matmuls on a model's validation songs)."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from experiments import precision
from stylenet_jax import batching
from stylenet_jax.config import ModelConfig
from stylenet_jax.model import StyleNet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _songs(rng, style, count):
    out = []
    for k in range(count):
        t = int(rng.integers(30, 90))
        held = rng.random((t, 88)) < 0.1
        inputs = np.stack([held & (rng.random((t, 88)) < 0.5), held], -1).reshape(t, 176)
        targets = np.where(held, rng.integers(20, 120, (t, 88)) / 127.0, 0.0)
        out.append(batching.Windows(
            batching.window_array(inputs.astype(np.uint8), 40),
            batching.window_array(targets.astype(np.float32), 40),
            batching.window_lengths(t, 40), style, f"{style}_{k}"))
    return out


def test_compare_reports_both_precisions_against_a_direct_computation():
    rng = np.random.default_rng(0)
    songs = _songs(rng, 0, 3) + _songs(rng, 1, 2)
    config = ModelConfig(num_styles=2, hidden_size=16, num_layers=1)
    params = StyleNet(config).init(jax.random.key(1), jnp.zeros((1, 40, 176)),
                                   jnp.array([40]), train=False)["params"]
    rows = precision.compare(params, config, ["a", "b"], songs, rows=4)
    assert [r["style"] for r in rows] == ["a", "b"] and [r["songs"] for r in rows] == [3, 2]
    # fp32 MSE by hand for style "b": every window through head 1 at once
    mine = songs[3:]
    x = np.concatenate([w.inputs for w in mine])
    y = np.concatenate([w.targets for w in mine])
    n = np.concatenate([w.lengths for w in mine])
    pred = np.asarray(StyleNet(config).apply({"params": params}, x, n, train=False)[0][1])
    active = y > 0
    assert rows[1]["cells"] == int(active.sum())
    np.testing.assert_allclose(rows[1]["mse_fp32"], np.mean((pred[active] - y[active]) ** 2),
                               rtol=1e-5)
    for r in rows:
        assert 0 < r["mean_abs"] <= r["max_abs"] < 2.0  # bf16 moves velocities, but little
        assert abs(r["mse_bf16"] - r["mse_fp32"]) < 0.01 * r["mse_fp32"]
        assert 0 <= r["moved"] < 0.5
    assert "| a | 3 |" in precision.render(rows, "m.npz", "d")


def test_cli_needs_a_dataset_and_says_so():
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-m", "experiments.precision",
                           "--data_dir=/nonexistent/dataset"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in done.stderr


def test_an_ensemble_gets_one_table_per_member():
    rng = np.random.default_rng(2)
    songs = _songs(rng, 0, 2) + _songs(rng, 1, 1)
    config = ModelConfig(num_styles=2, hidden_size=8, num_layers=1)
    members = [(StyleNet(config).init(jax.random.key(seed), jnp.zeros((1, 40, 176)),
                                      jnp.array([40]), train=False)["params"], config, ["a", "b"])
               for seed in (1, 2)]
    text = precision.report(members, os.path.join(REPO, "e.npz"), songs, "d", rows=4)
    assert "`e.npz` (member 1 of 2)" in text and "`e.npz` (member 2 of 2)" in text
    style_a = [line for line in text.splitlines() if line.startswith("| a | 2 |")]
    assert len(style_a) == 2 and style_a[0] != style_a[1]  # each member's own figures
    alone = precision.report(members[:1], os.path.join(REPO, "m.npz"), songs, "d", rows=4)
    assert "member" not in alone and alone.startswith("Model `m.npz`, validation split")
