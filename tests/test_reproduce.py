"""experiments.reproduce: learning curves from metrics.jsonl, the silent-model MSE, and the
whole report on a tiny trained run."""

import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import reproduce
from stylenet_jax import dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_reproduce_reports_on_a_tiny_run(tmp_path):
    """A training process, a report with two classifier trainings: about a minute on 2 cores,
    hence slow (CI runs it)."""
    workdir = tmp_path / "run"
    trained = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--flagfile=experiments/configs/tiny.flags",
         f"--workdir={workdir}", "--num_epochs=2", "--noprogress", "--snapshot_every_epochs=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    data_dir = str(workdir / "data" / "dataset")
    # A training workdir loads like an export (its best checkpoint, float32).
    from stylenet_jax import performer

    from_run, exported = performer.Stylizer(str(workdir)), performer.Stylizer(
        str(workdir / "inference.npz"))
    assert from_run.styles == exported.styles == ["classical", "jazz"]
    song = dataset.load_songs(data_dir, "validation")[0]
    np.testing.assert_allclose(from_run.predict(song.inputs, {"jazz": 1.0}),
                               exported.predict(song.inputs, {"jazz": 1.0}), atol=2e-3)
    silent = reproduce.silent_mse(data_dir, "validation")
    targets = [s.target for s in dataset.load_songs(data_dir, "validation")]
    assert silent == pytest.approx(sum(np.square(t).sum() for t in targets)
                                   / sum(t.size for t in targets), rel=1e-6)
    out = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, "-m", "experiments.reproduce", f"--data_dir={data_dir}",
         f"--workdir={workdir}", "--notrain", f"--out={out}", "--resamples=50"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "| Malik & Ek 2017 | 160 | 7.0e-04 | 1.1e-03 |" in text
    assert "| ours, best validation epoch |" in text and "| classical | model |" in text
    assert "| the paper's listeners (StyleNet) | 0.53 | 0.46 |" in text
    assert (tmp_path / "table" / "curves.png").is_file()


def test_reproduce_without_a_run_is_one_line_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.reproduce", f"--data_dir={tmp_path}",
         f"--workdir={tmp_path}", "--notrain", f"--out={tmp_path / 't.md'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ") and not (tmp_path / "t.md").exists()
