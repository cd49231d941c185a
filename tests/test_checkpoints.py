"""Tests of stylenet_jax.checkpoints: a run's Orbax manager (the newest N and the best), run
directories of the old layout (best in ``best/``), the inference export, and that loaded
parameters give the velocities of the parameters saved (tiny models, CPU)."""

import dataclasses
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from stylenet_jax import checkpoints, model, train_steps
from stylenet_jax.config import ModelConfig, OptimConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLES = ["classical", "jazz"]
CONFIG = ModelConfig(num_styles=2, hidden_size=4, num_layers=1)


def train_state(seed: int) -> train_steps.TrainState:
    """A fresh train state of CONFIG (host arrays); each seed gives other parameters."""
    return jax.device_get(train_steps.init_state(jax.random.PRNGKey(seed), model_config=CONFIG,
                                                 optim=OptimConfig()))


def meta(val_loss, epoch=1) -> dict:
    """A checkpoint's meta as training writes it."""
    return {"epoch": epoch, "val_loss": val_loss, "model_config": dataclasses.asdict(CONFIG),
            "styles": STYLES}


def assert_same_params(got, want) -> None:
    assert jax.tree.structure(got) == jax.tree.structure(want)
    jax.tree.map(np.testing.assert_array_equal, got, want)


def as_float16(params):
    """What an export stores: every parameter rounded to float16 (read back as float32)."""
    return jax.tree.map(lambda a: np.asarray(a, np.float16).astype(np.float32), params)


def velocities(params, config=CONFIG) -> np.ndarray:
    """Every head's velocities on a fixed two-row batch (one row padded)."""
    rng = np.random.default_rng(0)
    inputs = (rng.random((2, 24, config.input_size)) < 0.1).astype(np.uint8)
    return np.asarray(model.predict(params, inputs, np.array([24, 17], np.int32),
                                    config=config))


# ----------------------------------------------------------------------------- run checkpoints


def test_keeps_the_newest_and_the_best_across_a_resume(tmp_path):
    """One manager: the newest ``keep`` plus the lowest val_loss, also after reopening."""
    state = {"w": np.zeros(2, np.float32)}
    losses = {1: 0.5, 2: 0.2, 3: None, 4: 0.4, 5: 0.6}
    ckpts = checkpoints.RunCheckpoints(str(tmp_path), keep=2)
    for step in (1, 2, 3):
        ckpts.save(step, state, {"val_loss": losses[step]}, losses[step])
    ckpts.close()
    partial = tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp-1732550000"
    partial.mkdir()  # a save killed half-way
    ckpts = checkpoints.RunCheckpoints(str(tmp_path), keep=2)  # a resumed run
    try:
        assert not partial.exists()
        for step in (4, 5):
            ckpts.save(step, state, {"val_loss": losses[step]}, losses[step])
        assert sorted(int(d) for d in os.listdir(tmp_path / "checkpoints")) == [2, 4, 5]
        assert ckpts.best_step() == 2 and ckpts.latest_step() == 5
        assert ckpts.best_meta() == {"val_loss": 0.2} and ckpts.meta() == {"val_loss": 0.6}
        assert ckpts.meta(4) == {"val_loss": 0.4}
    finally:
        ckpts.close()


def test_restore_gives_back_the_state_and_meta_saved(tmp_path):
    states = {step: train_state(step) for step in (1, 2)}
    ckpts = checkpoints.RunCheckpoints(str(tmp_path), keep=3)
    try:
        for step, state in states.items():
            ckpts.save(step, state, meta(0.1 * step, epoch=step), 0.1 * step)
        for step in (None, 1):
            restored, got_meta = ckpts.restore(states[1], step)
            want = states[step or 2]
            jax.tree.map(np.testing.assert_array_equal, tuple(restored), tuple(want))
            assert got_meta == meta(0.1 * (step or 2), epoch=step or 2)
        with pytest.raises(checkpoints.CheckpointError, match="cannot restore"):
            ckpts.restore({"w": np.zeros(3, np.float32)})  # another run's shapes
    finally:
        ckpts.close()
    params, config, styles = checkpoints.restore_params(str(tmp_path))
    assert config == CONFIG and styles == STYLES
    assert_same_params(params, states[2].params)
    assert_same_params(checkpoints.restore_params(str(tmp_path), 1)[0], states[1].params)
    # A checkpoint folder itself reads like its workdir.
    assert_same_params(checkpoints.restore_params(str(tmp_path / "checkpoints"), best=True)[0],
                       states[1].params)


def test_the_old_layout_with_the_best_in_its_own_folder_is_read(tmp_path):
    """Runs written before one manager kept the best hold it in ``<workdir>/best/`` (saved
    without a metric; its val_loss is in its meta); a resumed run adds ranked steps to
    ``checkpoints/``. ``best=True`` takes the lowest val_loss of both folders."""
    workdir = str(tmp_path)
    states = {step: train_state(step) for step in range(1, 7)}
    old_best = checkpoints.RunCheckpoints(workdir, 1,
                                          directory=os.path.join(workdir, checkpoints.BEST))
    old_latest = checkpoints.RunCheckpoints(workdir, 2)
    try:  # the old layout: steps unranked; step 2, the best, saved to both folders
        for step, loss in ((1, 0.5), (2, 0.1), (3, 0.3), (4, 0.4)):
            old_latest.save(step, states[step], meta(loss, epoch=step))
        old_best.save(2, states[2], meta(0.1, epoch=2))
    finally:
        old_best.close()
        old_latest.close()
    assert sorted(os.listdir(os.path.join(workdir, checkpoints.CHECKPOINTS))) == ["3", "4"]

    def restored(**kw):
        return checkpoints.restore_params(workdir, **kw)[0]

    assert_same_params(restored(best=True), states[2].params)  # only best/ holds step 2
    assert_same_params(restored(), states[4].params)
    assert_same_params(restored(step=3), states[3].params)
    resumed = checkpoints.RunCheckpoints(workdir, 2)
    try:
        resumed.save(5, states[5], meta(0.2, epoch=5), 0.2)  # worse than the old best
        assert_same_params(restored(best=True), states[2].params)
        assert_same_params(restored(), states[5].params)
        resumed.save(6, states[6], meta(0.05, epoch=6), 0.05)  # better
        assert_same_params(restored(best=True), states[6].params)
        assert_same_params(restored(), states[6].params)
    finally:
        resumed.close()
    params, config, styles = checkpoints.restore_params(workdir, best=True)
    assert config == CONFIG and styles == STYLES


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="no such inference export"):
        checkpoints.load_inference(str(tmp_path / "missing.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(checkpoints.CheckpointError, match="not a stylenet-jax"):
        checkpoints.load_inference(str(tmp_path / "junk.npz"))
    with pytest.raises(checkpoints.CheckpointError, match="no such checkpoint"):
        checkpoints.restore_params(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(checkpoints.CheckpointError, match="no checkpoint"):
        checkpoints.restore_params(str(tmp_path / "empty"))
    ckpts = checkpoints.RunCheckpoints(str(tmp_path / "empty"))
    try:
        assert ckpts.latest_step() is None and ckpts.best_step() is None
        assert ckpts.best_meta() is None
        with pytest.raises(checkpoints.CheckpointError, match="no checkpoint"):
            ckpts.meta()
        with pytest.raises(checkpoints.CheckpointError, match="no checkpoint to restore"):
            ckpts.restore({"w": np.zeros(2, np.float32)})
    finally:
        ckpts.close()


def test_importing_checkpoints_imports_neither_flax_nor_the_model():
    code = ("import sys, stylenet_jax.checkpoints; "
            "loaded = [m for m in ('flax', 'stylenet_jax.model') if m in sys.modules]; "
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------- export


def test_export_and_load_inference(tmp_path):
    params = train_state(0).params
    path = checkpoints.export_inference(str(tmp_path / "model"), params, CONFIG, STYLES)
    assert path == str(tmp_path / "model.npz")
    loaded, config, styles = checkpoints.load_inference(path)
    assert config == CONFIG and styles == STYLES
    assert all(a.dtype == np.float32 for a in jax.tree.leaves(loaded))
    assert_same_params(loaded, as_float16(params))  # float16 on disk, exactly
    with pytest.raises(ValueError, match="3 style names for 2 heads"):
        checkpoints.export_inference(str(tmp_path / "bad"), params, CONFIG, STYLES + ["pop"])


def test_export_run_exports_the_best_else_the_params_given(tmp_path):
    states = {step: train_state(step) for step in (1, 2, 3)}
    workdir = str(tmp_path / "run")
    ckpts = checkpoints.RunCheckpoints(workdir, keep=3)
    try:
        for step, loss in ((1, 0.5), (2, 0.1), (3, 0.3)):
            ckpts.save(step, states[step], meta(loss, epoch=step), loss)
    finally:
        ckpts.close()
    path = checkpoints.export_run(workdir, states[3].params, CONFIG, STYLES)
    assert path == os.path.join(workdir, checkpoints.INFERENCE_FILE)
    assert_same_params(checkpoints.load_inference(path)[0], as_float16(states[2].params))
    # No checkpoint (e.g. --checkpoint_every_epochs beyond the run): the params given.
    empty = str(tmp_path / "empty")
    other = dataclasses.replace(CONFIG, num_layers=2)
    last = jax.device_get(train_steps.init_params(other, jax.random.PRNGKey(9)))
    path = checkpoints.export_run(empty, last, other, ["a", "b"])
    loaded, config, styles = checkpoints.load_inference(path)
    assert path == os.path.join(empty, checkpoints.INFERENCE_FILE)
    assert config == other and styles == ["a", "b"]
    assert_same_params(loaded, as_float16(last))


# ----------------------------------------------------------------------------- velocities


def test_a_checkpoint_and_an_export_give_the_velocities_of_their_params(tmp_path):
    params = train_state(3).params
    want = velocities(params)
    assert want.shape == (2, 2, 24, 88) and want.std() > 0
    ckpts = checkpoints.RunCheckpoints(str(tmp_path), keep=1)
    try:
        ckpts.save(7, train_state(3), meta(0.3), 0.3)
    finally:
        ckpts.close()
    for best in (False, True):  # float32 checkpoints: bit-identical
        np.testing.assert_array_equal(
            velocities(checkpoints.restore_params(str(tmp_path), best=best)[0]), want)
    # A float16 export: the float16-rounded params' velocities, the same at every load.
    path = checkpoints.export_inference(str(tmp_path / "model.npz"), params, CONFIG, STYLES)
    exported = velocities(checkpoints.load_inference(path)[0])
    np.testing.assert_array_equal(exported, velocities(as_float16(params)))
    np.testing.assert_array_equal(velocities(checkpoints.load_inference(path)[0]), exported)
    np.testing.assert_allclose(exported, want, atol=2e-3)  # and close to float32's
