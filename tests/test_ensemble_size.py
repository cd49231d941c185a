"""experiments.ensemble_size: ensembles of a recipe's first K models, scored against the tree."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from midi_factory import midi_file, notes_track
from performer_factory import ROOT, STYLES
from experiments import ensemble_size
from stylenet_jax import checkpoints, evaluation, performances, performer
from stylenet_jax.config import ModelConfig
from stylenet_jax.model import StyleNet


def _tiny_model(path, key):
    """A small two-style model (performer_factory.STYLES) initialised from PRNG ``key``."""
    config = ModelConfig(num_styles=2, hidden_size=16, num_layers=1)
    params = StyleNet(config).init(jax.random.key(key), jnp.zeros((1, 4, 176)),
                                   jnp.ones((1,), jnp.int32), train=False)["params"]
    params = jax.tree.map(lambda a: a * 4, params)  # livelier outputs than the tiny init
    return checkpoints.export_inference(str(path), params, config, STYLES)


def _pieces(folder, count=2):
    """``count`` classical pieces of chords and runs, random velocities."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)
    for k in range(count):
        notes = [(i * 120, i * 120 + 100, int(rng.integers(40, 80)), int(rng.integers(20, 110)))
                 for i in range(96)]
        notes += [(i * 480, i * 480 + 400, p, int(rng.integers(20, 110)))
                  for i in range(24) for p in (36 + k, 43 + k)]
        midi_file(notes_track(notes), ticks_per_beat=480).save(
            os.path.join(folder, f"piece{k}.mid"))
    return folder


def test_members_are_taken_in_natural_order_and_bad_specs_are_refused(tmp_path):
    for name in ("run10", "run2", "run1", "other"):
        (tmp_path / f"{name}.npz").write_bytes(b"")
    found = ensemble_size.parse_members([f"a={tmp_path}/run*.npz", f"b={tmp_path}/other.npz"])
    assert [os.path.basename(p) for p in found["a"]] == ["run1.npz", "run2.npz", "run10.npz"]
    assert found["b"] == [f"{tmp_path}/other.npz"]
    for bad in (["nothing"], ["a="], [f"a={tmp_path}/none*.npz"], [f"a={tmp_path}/gone.npz"]):
        with pytest.raises(ValueError):
            ensemble_size.parse_members(bad)
    with pytest.raises(ValueError, match="twice"):
        ensemble_size.parse_members([f"a={tmp_path}/run1.npz", f"b={tmp_path}/run1.npz"])
    assert ensemble_size.sizes_of([1, 3, 9], 5) == [1, 3, 5]
    assert ensemble_size.sizes_of([9], 2) == [2]


def test_the_first_k_models_play_what_an_ensemble_file_of_them_plays(tmp_path):
    paths = [_tiny_model(tmp_path / f"m{k}.npz", key) for k, key in enumerate((1, 2, 3))]
    joined = checkpoints.export_ensemble(
        str(tmp_path / "two.npz"), [checkpoints.load_inference(p) for p in paths[:2]])
    performed = performances.from_folder(_pieces(str(tmp_path / "midi"), 1), "classical")
    stylizers = [performer.Stylizer(p) for p in paths]
    values, _ = ensemble_size.perform_models(performed, stylizers, _NoTree(), lambda line: None)
    assert values[0].shape == (3, len(performed[0].notes))
    given = evaluation.flatten(performed[0])
    alone = evaluation.ModelSystem(stylizers[0]).perform(given).velocities
    np.testing.assert_array_equal(ensemble_size.ensemble_velocities(values[0], 1), alone)
    both = evaluation.ModelSystem(performer.Stylizer(joined)).perform(given).velocities
    mine = ensemble_size.ensemble_velocities(values[0], 2)
    assert np.abs(mine - both).max() <= 1  # float sums in another order may round apart
    assert (mine == both).mean() > 0.99
    assert not np.array_equal(mine, alone)  # two models are not one


class _NoTree:
    """Stands in for the tree baseline where only the models' outputs are under test."""

    def perform(self, performed):
        return evaluation.Performance(np.full(len(performed.notes), 64, np.int64))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "experiments.ensemble_size", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_report_scores_each_size_as_evaluate_scores_its_ensemble(tmp_path):
    for k, key in enumerate((1, 2, 3)):
        _tiny_model(tmp_path / "runs" / f"seed{k}.npz", key)
    midi = _pieces(str(tmp_path / "midi"))
    out = str(tmp_path / "report" / "sizes.md")
    done = _run(f"--midi_dir={midi}", "--files_style=classical", "--noprogress",
                f"--member=a={tmp_path}/runs/seed*.npz", "--sizes=1,2", "--resamples=50",
                f"--out={out}")
    assert done.returncode == 0, done.stderr
    report = open(out).read()
    for row in ("| features |", "| a x1 |", "| a x2 |", "| a x3 |"):
        assert row in report
    assert os.path.getsize(str(tmp_path / "report" / "sizes.png")) > 0
    scores = json.load(open(str(tmp_path / "report" / "sizes.json")))["scores"]
    checkpoints.export_ensemble(str(tmp_path / "all.npz"), [
        checkpoints.load_inference(str(tmp_path / "runs" / f"seed{k}.npz")) for k in range(3)])
    judged = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--midi_dir={midi}",
         "--files_style=classical", f"--model=all={tmp_path}/all.npz", "--baselines=features",
         "--noprogress", "--resamples=50", f"--out={tmp_path}/ev.md"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert judged.returncode == 0, judged.stderr
    by_system = json.load(open(str(tmp_path / "ev.json")))
    assert scores["features"]["classical"]["mae"] == pytest.approx(
        by_system["features"]["classical"]["mae"])
    assert scores["a x3"]["classical"]["mae"] == pytest.approx(
        by_system["all"]["classical"]["mae"], abs=0.02)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    paths = [_tiny_model(tmp_path / f"m{k}.npz", key) for k, key in enumerate((1, 2))]
    joined = checkpoints.export_ensemble(
        str(tmp_path / "two.npz"), [checkpoints.load_inference(p) for p in paths])
    midi = _pieces(str(tmp_path / "midi"), 1)
    out = str(tmp_path / "r.md")
    for args, says in (([f"--member=a={joined}"], "give its runs one by one"),
                       ([f"--member=a={tmp_path}/none*.npz"], "no such model"),
                       ([f"--member=a={paths[0]}", "--sizes=0"], "at least 1")):
        done = _run(f"--midi_dir={midi}", "--files_style=classical", f"--out={out}", *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
        assert says in done.stderr
        assert not os.path.exists(out)
