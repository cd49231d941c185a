"""Ensemble exports: several models in one file (checkpoints.export_ensemble), played by
performer.Stylizer as the mean of its members, and written by `experiments.ensemble`."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from performer_factory import STYLES, export_tiny_model
from stylenet_jax import checkpoints, performer
from stylenet_jax.config import ModelConfig
from stylenet_jax.model import StyleNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def other_model(path: str, styles=STYLES) -> str:
    """A model of another recipe than ``export_tiny_model``'s: one layer, hears the tempo."""
    config = ModelConfig(num_styles=len(styles), hidden_size=8, num_layers=1, tempo_input=True)
    params = StyleNet(config).init(jax.random.key(7), jnp.zeros((1, 4, 176)),
                                   jnp.ones((1,), jnp.int32), train=False)["params"]
    params = jax.tree.map(lambda a: a * 4, params)
    return checkpoints.export_inference(path, params, config, list(styles))


def piece(steps=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    held = rng.random((steps, 88)) < 0.05
    onset = held & (rng.random((steps, 88)) < 0.5)
    return np.stack([onset, held], -1).reshape(steps, 176).astype(np.uint8)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    return export_tiny_model(str(folder / "a.npz")), other_model(str(folder / "b.npz"))


def test_an_ensemble_plays_the_mean_of_its_members(members, tmp_path):
    a, b = (checkpoints.load_inference(p) for p in members)
    path = checkpoints.export_ensemble(str(tmp_path / "e"), [a, b])
    assert path.endswith(".npz")
    loaded = checkpoints.load_models(path)
    assert [m[1] for m in loaded] == [a[1], b[1]] and loaded[1][2] == list(STYLES)
    for (params, _, _), (want, _, _) in zip(loaded, (a, b)):
        for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(want)):
            np.testing.assert_array_equal(x, y)  # both float16 on disk already

    ensemble, one, two = (performer.Stylizer(p) for p in (path, *members))
    assert ensemble.styles == list(STYLES) and len(ensemble.members) == 2
    inputs = piece()
    for blend in ({STYLES[0]: 1.0}, {STYLES[0]: 0.3, STYLES[1]: 0.7}):
        for spb in (0.5, 0.25):
            mean = ensemble.predict(inputs, blend, spb)
            parts = one.predict(inputs, blend, spb), two.predict(inputs, blend, spb)
            np.testing.assert_allclose(mean, (parts[0] + parts[1]) / 2, atol=1e-6)
            assert not np.allclose(parts[0], parts[1], atol=1e-3)  # the members differ
    # the tempo reaches the member that hears it and not the other
    assert not np.allclose(two.predict(inputs, blend, 0.5), two.predict(inputs, blend, 0.25))
    np.testing.assert_array_equal(one.predict(inputs, blend, 0.5),
                                  one.predict(inputs, blend, 0.25))


def test_members_must_play_the_same_styles(members, tmp_path):
    a = checkpoints.load_inference(members[0])
    c = checkpoints.load_inference(other_model(str(tmp_path / "c.npz"), STYLES[::-1]))
    with pytest.raises(ValueError, match="same styles"):
        checkpoints.export_ensemble(str(tmp_path / "x.npz"), [a, c])
    with pytest.raises(ValueError, match="two models"):
        checkpoints.export_ensemble(str(tmp_path / "x.npz"), [a])
    assert not (tmp_path / "x.npz").exists()


def test_one_model_readers_name_an_ensemble(members, tmp_path):
    path = checkpoints.export_ensemble(
        str(tmp_path / "e.npz"), [checkpoints.load_inference(p) for p in members])
    with pytest.raises(checkpoints.CheckpointError, match="an ensemble of 2 models"):
        checkpoints.load_inference(path)
    assert len(checkpoints.load_models(members[0])) == 1  # a plain export is one model


def _ensemble(*args):
    return subprocess.run([sys.executable, "-m", "experiments.ensemble", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_command_writes_a_file_stylize_reads(members, tmp_path):
    out = tmp_path / "both.npz"
    done = _ensemble(f"--model={members[0]}", f"--model={members[1]}", f"--out={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the mean of 2 models" in done.stdout
    assert len(performer.Stylizer(str(out)).members) == 2

    for args, message in (([f"--model={members[0]}"], "give two --model or more"),
                          ([f"--model={members[0]}", f"--model={tmp_path / 'none.npz'}"],
                           "no such inference export")):
        bad = _ensemble(*args, f"--out={tmp_path / 'bad.npz'}")
        assert bad.returncode != 0 and message in bad.stderr, bad.stderr[-2000:]
        assert "Traceback" not in bad.stderr and not (tmp_path / "bad.npz").exists()


def test_the_evaluation_names_an_ensemble(members, tmp_path):
    from experiments import evaluate

    path = checkpoints.export_ensemble(
        str(tmp_path / "e.npz"), [checkpoints.load_inference(p) for p in members])
    systems, described = evaluate.build_systems([f"one={members[0]}", f"both={path}"], [])
    assert [s.name for s in systems] == ["one", "both"]
    assert described["one"].startswith("StyleNet `")
    assert described["both"].startswith("an ensemble of 2 StyleNets `")


def test_a_damaged_ensemble_is_one_line(members, tmp_path):
    import json

    path = checkpoints.export_ensemble(
        str(tmp_path / "e.npz"), [checkpoints.load_inference(p) for p in members])
    with np.load(path) as z:
        good = {k: z[k] for k in z.files}
    meta = json.loads(str(good["__meta__"]))

    def damaged(name, arrays=None, **meta_changes):
        out = str(tmp_path / f"{name}.npz")
        np.savez(out, **{**(good if arrays is None else arrays),
                         "__meta__": np.array(json.dumps({**meta, **meta_changes}))})
        return out

    one_member = damaged("one", members=meta["members"][:1])
    no_params = damaged("no_params", {k: v for k, v in good.items()
                                      if not k.startswith("member1/")})
    styles = [dict(m) for m in meta["members"]]
    styles[1]["styles"] = list(STYLES[::-1])
    other_styles = damaged("styles", members=styles)
    for path_, words in ((one_member, "two members or more"),
                         (no_params, "member 2 has no parameters"),
                         (other_styles, "different styles")):
        with pytest.raises(checkpoints.CheckpointError, match=words):
            checkpoints.load_models(path_)
        with pytest.raises(performer.StylizeError, match=words):
            performer.Stylizer(path_)
