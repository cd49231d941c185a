"""A hybrid export records the tree it plays with, and what plays it warns of another tree
(stylenet_jax.tree_pairing, experiments.attach_tree, experiments.ensemble --tree)."""

import hashlib
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from performer_factory import STYLES, export_tiny_model
from stylenet_jax import checkpoints, performer, tree_pairing
from stylenet_jax.config import ModelConfig
from stylenet_jax.feature_baseline import FeatureBaseline, feature_names
from stylenet_jax.train_steps import init_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_tree(path: str, velocity: float, extras=()) -> str:
    """A tree baseline file that plays every note of both STYLES at ``velocity``."""
    columns = len(feature_names(extras))
    rows, targets = np.zeros((2, columns), np.float32), np.full(2, velocity)
    models = {style: DummyRegressor(strategy="mean").fit(rows, targets) for style in STYLES}
    FeatureBaseline(models, extras).save(path)
    return path


def export_hybrid(path: str, seed: int = 0) -> str:
    config = ModelConfig(num_styles=len(STYLES), hidden_size=8, num_layers=1, note_readout=4,
                         tree_prior=True)
    return checkpoints.export_inference(path, init_params(config, jax.random.key(seed)),
                                        config, STYLES)


@pytest.fixture
def trees(tmp_path):
    return (save_tree(str(tmp_path / "own.pkl"), 60), save_tree(str(tmp_path / "other.pkl"), 90),
            save_tree(str(tmp_path / "wider.pkl"), 60, extras=("melody_line",)))


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_a_loaded_tree_knows_the_sha256_of_its_file(trees):
    with open(trees[0], "rb") as f:
        assert FeatureBaseline.load(trees[0]).sha256 == hashlib.sha256(f.read()).hexdigest()
    assert FeatureBaseline.load(trees[0]).sha256 != FeatureBaseline.load(trees[1]).sha256
    fitted = FeatureBaseline({"pop": DummyRegressor()})
    assert fitted.sha256 is None
    with pytest.raises(tree_pairing.PairingError, match="not loaded from a file"):
        tree_pairing.tree_record(fitted)


def test_attaching_records_the_tree_and_keeps_every_parameter(trees, tmp_path):
    model = export_hybrid(str(tmp_path / "h.npz"))
    before = checkpoints.load_models(model)
    assert tree_pairing.recorded_tree(model) is None
    own = FeatureBaseline.load(trees[0])
    tree_pairing.attach_tree(model, tree_pairing.tree_record(own, trees[0]))
    record = tree_pairing.recorded_tree(model)
    assert record == {"sha256": own.sha256, "feature_names": list(feature_names()),
                      "styles": STYLES, "file": "own.pkl"}
    after = checkpoints.load_models(model)
    assert after[0][1:] == before[0][1:]
    for a, b in zip(jax.tree.leaves(before[0][0]), jax.tree.leaves(after[0][0])):
        np.testing.assert_array_equal(a, b)
    assert tree_pairing.recorded_tree(str(tmp_path)) is None  # a run directory records none


def test_only_a_hybrid_export_takes_a_record_and_a_bad_record_is_one_line(trees, tmp_path):
    plain = export_tiny_model(str(tmp_path / "plain.npz"))
    record = tree_pairing.tree_record(FeatureBaseline.load(trees[0]), trees[0])
    with pytest.raises(tree_pairing.PairingError, match="not a hybrid model"):
        tree_pairing.attach_tree(plain, record)
    assert tree_pairing.recorded_tree(plain) is None  # left as it was
    model = export_hybrid(str(tmp_path / "h.npz"))
    tree_pairing.attach_tree(model, {"sha256": 5})
    with pytest.raises(tree_pairing.PairingError, match="bad tree record"):
        tree_pairing.recorded_tree(model)
    with pytest.raises(tree_pairing.PairingError, match="not a stylenet-jax export"):
        tree_pairing.recorded_tree(trees[0])


def test_the_stylizer_names_a_tree_other_than_the_recorded_one(trees, tmp_path):
    own, other, wider = trees
    model = export_hybrid(str(tmp_path / "h.npz"))
    assert performer.Stylizer(model, tree=other).tree_problem is None  # nothing recorded
    tree_pairing.attach_tree(model, tree_pairing.tree_record(FeatureBaseline.load(own), own))
    assert performer.Stylizer(model, tree=own).tree_problem is None
    problem = performer.Stylizer(model, tree=other).tree_problem
    sha = FeatureBaseline.load(other).sha256[:tree_pairing.SHOWN_DIGITS]
    assert "made to play with the tree own.pkl" in problem and other in problem
    assert sha in problem and "other columns" not in problem
    assert "reads other columns" in performer.Stylizer(model, tree=wider).tree_problem
    in_memory = FeatureBaseline(FeatureBaseline.load(other).models)
    assert performer.Stylizer(model, tree=in_memory).tree_problem is None  # cannot be checked


def test_stylize_and_the_evaluation_warn_of_another_tree(trees, tmp_path):
    from experiments.systems import build_systems
    from performer_factory import rich_file

    own, other, _ = trees
    model = export_hybrid(str(tmp_path / "h.npz"))
    assert run("experiments.attach_tree", f"--model={model}", f"--tree={own}").returncode == 0
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    for tree, warned in ((own, False), (other, True)):
        done = run("stylenet_jax.stylize", source, "-o", str(tmp_path / "out.mid"), "--style",
                   "jazz", f"--checkpoint={model}", f"--features_model={tree}")
        assert done.returncode == 0, done.stderr
        assert ("warning: the model was made to play with the tree own.pkl" in done.stderr
                ) == warned
    _, described = build_systems([f"hybrid={model}"], [], features_model=other)
    assert "warning: the model was made to play with" in described["hybrid"]
    _, described = build_systems([f"hybrid={model}"], [], features_model=own)
    assert "warning" not in described["hybrid"]


def test_the_ensemble_records_passes_on_and_refuses_trees(trees, tmp_path):
    own, other, _ = trees
    a, b = export_hybrid(str(tmp_path / "a.npz"), 1), export_hybrid(str(tmp_path / "b.npz"), 2)
    out = str(tmp_path / "e.npz")
    done = run("experiments.ensemble", f"--model={a}", f"--model={b}", f"--out={out}",
               f"--tree={own}")
    assert done.returncode == 0, done.stderr
    assert tree_pairing.recorded_tree(out)["sha256"] == FeatureBaseline.load(own).sha256
    shown = run("experiments.attach_tree", f"--model={out}")
    assert "plays with own.pkl" in shown.stdout
    again = str(tmp_path / "again.npz")  # a member's record passes on
    assert run("experiments.ensemble", f"--model={out}", f"--model={b}",
               f"--out={again}").returncode == 0
    assert tree_pairing.recorded_tree(again) == tree_pairing.recorded_tree(out)
    refused = run("experiments.ensemble", f"--model={out}", f"--model={b}",
                  f"--out={tmp_path / 'no.npz'}", f"--tree={other}")
    assert refused.returncode == 1 and "made for one tree" in refused.stderr
    plain = export_tiny_model(str(tmp_path / "plain.npz"))
    refused = run("experiments.ensemble", f"--model={plain}", f"--model={plain}",
                  f"--out={tmp_path / 'no.npz'}", f"--tree={own}")
    assert refused.returncode == 1 and "none of the models reads a tree" in refused.stderr
    assert not os.path.exists(tmp_path / "no.npz")
