"""Tests of stylenet_jax.snapshot: the training snapshot PNG from arrays (``save_snapshot``) and
from a model (``write_snapshot``), with and without the interpretation layer."""

import struct

import jax
import numpy as np
import pytest

from stylenet_jax import batching, dataset, model, snapshot, train_steps
from stylenet_jax.config import ModelConfig

STYLES = ["classical", "jazz"]
WINDOW = 16


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG file; fails unless it is one of some substance."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert len(data) > 5000  # panels were drawn, not an empty canvas
    return struct.unpack(">II", data[16:24])


def song_windows(steps: int = 50, style: int = 1) -> batching.Windows:
    """A random song of ``steps`` steps cut into WINDOW-step windows (the last one short)."""
    rng = np.random.default_rng(steps)
    held = rng.random((steps, 88)) < 0.1
    inputs = np.stack([held & (rng.random((steps, 88)) < 0.5), held], -1).reshape(steps, 176)
    velocities = np.where(held, rng.integers(20, 110, (steps, 88)), 0).astype(np.uint8)
    song = dataset.Song("song_0", STYLES[style], inputs.astype(np.uint8), velocities)
    return batching.window_songs([song], STYLES, WINDOW)[0]


def test_save_snapshot_draws_one_panel_per_array(tmp_path):
    rng = np.random.default_rng(0)
    t = 40
    inputs = (rng.random((t, 176)) < 0.1).astype(np.uint8)
    target = rng.random((t, 88)).astype(np.float32)
    predictions = rng.random((2, t, 88)).astype(np.float32)
    path = str(tmp_path / "nested" / "folder" / "plain.png")
    assert snapshot.save_snapshot(path, inputs, target, predictions, STYLES, 1) == path
    plain = png_size(path)
    richer = png_size(snapshot.save_snapshot(
        str(tmp_path / "rich.png"), inputs, target, predictions, STYLES, 0,
        interpretation=rng.standard_normal((t, 8)).astype(np.float32), title="epoch 3"))
    assert richer[1] > plain[1]  # one more panel
    three = png_size(snapshot.save_snapshot(
        str(tmp_path / "three.png"), inputs, target, np.concatenate([predictions] * 2)[:3],
        STYLES + ["pop"], 2))
    assert three[1] > plain[1]  # one more head


@pytest.mark.parametrize("interpretation", [True, False])
def test_write_snapshot_plots_every_head_of_the_model(tmp_path, monkeypatch, interpretation):
    config = ModelConfig(num_styles=2, hidden_size=8, num_layers=1,
                         use_interpretation_layer=interpretation)
    params = train_steps.init_params(config, jax.random.PRNGKey(0))
    song = song_windows(50)  # windows of 16, 16, 16 and 2 steps
    drawn = []
    save = snapshot.save_snapshot

    def recording_save(path, *args, **kwargs):
        drawn.append((args, kwargs))
        return save(path, *args, **kwargs)

    monkeypatch.setattr(snapshot, "save_snapshot", recording_save)
    sizes = {}
    for max_steps, steps in ((40, 48), (400, 50)):  # whole windows: 3 of 4, all 4
        path = str(tmp_path / f"{max_steps}.png")
        assert snapshot.write_snapshot(path, config, params, song, STYLES, "epoch 1",
                                       max_steps=max_steps) == path
        sizes[max_steps] = png_size(path)
        args, kwargs = drawn[-1]
        inputs, target, predictions, styles, own = args[:5]
        interpretation_drawn = args[5] if len(args) > 5 else kwargs.get("interpretation")
        np.testing.assert_array_equal(inputs, song.inputs.reshape(-1, 176)[:steps])
        np.testing.assert_array_equal(target, song.targets.reshape(-1, 88)[:steps])
        assert styles == STYLES and own == 1 and kwargs["title"] == "epoch 1 - song_0"
        # The model reads the song as one sequence: model.predict's velocities (up to the
        # rounding of another padded length).
        vel, inter = model.predict(params, inputs[None], np.array([steps], np.int32),
                                   config=config, with_interpretation=True)
        assert predictions.shape == (2, steps, 88)
        np.testing.assert_allclose(predictions, np.asarray(vel)[:, 0], rtol=0, atol=1e-6)
        if interpretation:
            assert interpretation_drawn.shape == (steps, 8)
            np.testing.assert_allclose(interpretation_drawn, np.asarray(inter)[0], rtol=0,
                                       atol=1e-6)
        else:
            assert inter is None and interpretation_drawn is None
    assert sizes[40][1] == sizes[400][1]  # the same panels, a longer time axis
