"""Checkpoint averaging: the mean itself, and `experiments.average_checkpoints` on a real run."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import checkpoint_averaging, checkpoints, training
from stylenet_jax.config import Config
from stylenet_jax.metrics_writer import METRICS_FILE, read_epoch_curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_mean_is_taken_leaf_by_leaf():
    a = {"w": np.array([1.0, 2.0]), "b": {"c": np.array([[0.0]])}}
    b = {"w": np.array([3.0, 6.0]), "b": {"c": np.array([[1.0]])}}
    mean = checkpoint_averaging.average_params([a, b])
    np.testing.assert_array_equal(mean["w"], [2.0, 4.0])
    np.testing.assert_array_equal(mean["b"]["c"], [[0.5]])
    assert mean["w"].dtype == np.float32
    with pytest.raises(ValueError, match="different models"):
        checkpoint_averaging.average_params([a, {"w": np.array([1.0, 2.0])}])
    with pytest.raises(ValueError, match="shapes differ"):
        checkpoint_averaging.average_params([a, {**b, "w": np.array([1.0])}])
    with pytest.raises(ValueError):
        checkpoint_averaging.average_params([])


def test_best_for_a_style_takes_the_kept_step_of_that_styles_lowest_validation_loss():
    from experiments.average_checkpoints import best_step_for

    curves = {1: {"train_loss": 0.9, "val_loss": 0.2, "val_loss/jazz": 0.5, "val_loss/pop": 0.1},
              2: {"val_loss": 0.1, "val_loss/jazz": 0.3, "val_loss/pop": 0.2},
              3: {"val_loss": 0.3, "val_loss/jazz": 0.4}}
    every = {10: 1, 20: 2, 30: 3}
    assert best_step_for(curves, every, "jazz") == 20
    assert best_step_for(curves, every, "pop") == 10  # not the epoch best for all styles
    with pytest.raises(checkpoints.CheckpointError, match=r"jazz's lowest validation loss "
                       r"\(0.30000\) is at epoch 2, whose checkpoint was not kept \(kept: "
                       r"epochs \[1, 3\]\)"):
        best_step_for(curves, {30: 3, 10: 1}, "jazz")
    with pytest.raises(checkpoints.CheckpointError, match=r"no validation loss for style "
                       r"'rock' \(its styles: jazz, pop\)"):
        best_step_for(curves, every, "rock")


def _average(*args):
    return subprocess.run([sys.executable, "-m", "experiments.average_checkpoints", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_averaging_a_runs_checkpoints(tmp_path):
    config = Config().replace(hidden_size=8, num_layers=1, num_epochs=3, progress=False,
                              snapshot_every_epochs=0, window=50, keep_checkpoints=3,
                              data_dir=write_dataset(str(tmp_path / "data")))
    run = str(tmp_path / "run")
    training.train_and_evaluate(config, run)
    steps = sorted(checkpoints.RunCheckpoints(run, None).manager.all_steps())
    assert len(steps) == 3

    one = _average(f"--workdir={run}", f"--steps={steps[0]}", f"--out={tmp_path / 'one.npz'}")
    assert one.returncode == 0, one.stderr[-2000:]
    recorded, measured = [float(line.split("loss ")[1].split()[0])
                          for line in one.stdout.splitlines() if "validation loss" in line]
    assert measured == pytest.approx(recorded, abs=1e-5)  # scored as training scored it

    every = _average(f"--workdir={run}", f"--out={tmp_path / 'all.npz'}")
    assert every.returncode == 0, every.stderr[-2000:]
    assert every.stdout.count("(recorded)") == 3 and "mean of 3" in every.stdout
    mean, config_out, styles = checkpoints.load_inference(str(tmp_path / "all.npz"))
    members = [checkpoints.restore_params(run, s)[0] for s in steps]
    expected = checkpoint_averaging.average_params(members)
    got, want = jax.tree.leaves(mean), jax.tree.leaves(expected)
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=2e-3)  # the export is float16
    assert not all(np.allclose(a, b) for a, b in zip(got, jax.tree.leaves(members[-1])))
    assert styles == ["classical", "jazz"] and config_out.hidden_size == 8

    curves = read_epoch_curves(os.path.join(run, METRICS_FILE))
    best = min(curves, key=lambda epoch: curves[epoch]["val_loss/jazz"])
    at_best = steps[best - 1]  # every epoch kept: one checkpoint an epoch, in order
    jazz = _average(f"--workdir={run}", "--best_for=jazz", "--novalidate",
                    f"--out={tmp_path / 'jazz.npz'}")
    assert jazz.returncode == 0, jazz.stderr[-2000:]
    assert f"jazz's lowest validation loss: epoch {best} (step {at_best})" in jazz.stdout
    chosen, _, _ = checkpoints.load_inference(str(tmp_path / "jazz.npz"))
    for a, b in zip(jax.tree.leaves(chosen),
                    jax.tree.leaves(checkpoints.restore_params(run, at_best)[0])):
        np.testing.assert_allclose(a, b, atol=2e-3)
    both = _average(f"--workdir={run}", "--best_for=jazz", f"--steps={steps[0]}")
    assert both.returncode != 0 and "give one" in both.stderr

    missing = _average(f"--workdir={run}", "--steps=999999", f"--out={tmp_path / 'no.npz'}")
    assert missing.returncode != 0 and "no checkpoint at step(s) [999999]" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "no.npz").exists()


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    result = _average(f"--workdir={tmp_path / 'nothing'}")
    assert result.returncode != 0 and "no checkpoints/ folder" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "nothing").exists()
