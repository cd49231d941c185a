"""Tests of stylenet_jax.note_readout and ModelConfig.note_readout (small, CPU-fast)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylenet_jax import model, note_readout
from stylenet_jax.config import ModelConfig

FEATURE = {name: i for i, name in enumerate(note_readout.CELL_FEATURES)}


def grid(steps: int, notes) -> np.ndarray:
    """(1, steps, 176) uint8 input from (key, start, end) notes, in encoding's layout."""
    x = np.zeros((1, steps, 176), np.uint8)
    for key, start, end in notes:
        x[0, start, 2 * key] = 1
        x[0, start:end, 2 * key + 1] = 1
    return x


def features(x: np.ndarray) -> dict[str, np.ndarray]:
    f = np.asarray(note_readout.cell_features(jnp.asarray(x)))[0]
    assert f.shape == (x.shape[1], 88, len(note_readout.CELL_FEATURES))
    return {name: f[..., i] for name, i in FEATURE.items()}


def test_cells_know_their_voice_chord_place_and_duration():
    # A three-note chord at step 0 (keys 39, 43, 46; 46 held 6 steps), key 39 re-struck at
    # step 2, and a melody note at step 5 above everything still sounding.
    f = features(grid(8, [(39, 0, 2), (43, 0, 3), (46, 0, 6), (39, 2, 4), (50, 5, 8)]))
    assert [int(np.flatnonzero(f["top"][t])[0]) for t in range(8)] == [46] * 5 + [50] * 3
    assert [int(np.flatnonzero(f["bottom"][t])[0]) for t in range(8)] == (
        [39] * 4 + [46] * 2 + [50] * 2)
    # place in the chord at step 0: 39 has two onsets above, 46 two below
    assert f["onsets_above"][0, [39, 43, 46]].tolist() == [2 / 4, 1 / 4, 0.0]
    assert f["onsets_below"][0, [39, 43, 46]].tolist() == [0.0, 1 / 4, 2 / 4]
    # at step 5 the melody note has the held 46 below it, nothing above
    assert f["held_below"][5, 50] == 1 / 4 and f["held_above"][5, 50] == 0.0
    assert f["held_above"][5, 46] == 1 / 4
    assert f["chord"][0, 0] == 3 / 4 and f["chord"][2, 87] == 1 / 4 and f["chord"][1, 5] == 0
    assert f["duration"][0, 46] == 6 / 16 and f["duration"][2, 39] == 2 / 16
    assert np.count_nonzero(f["duration"]) == 5  # at onsets only
    assert f["onset"].sum() == 5 and f["held"][4, 46] == 1 and f["held"][4, 43] == 0
    beat = np.stack([f[f"beat_{i}"][:, 0] for i in range(4)], -1)
    assert beat.argmax(-1).tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert f["pitch"][3, 0] == 0.0 and f["pitch"][3, 87] == 1.0


def _params(cfg: ModelConfig, x: np.ndarray, lengths: np.ndarray):
    return jax.jit(lambda k: model.StyleNet(cfg).init(
        k, jnp.asarray(x), lengths, train=False)["params"])(jax.random.key(0))


def test_off_is_the_paper_network_and_on_adds_a_readout_per_head():
    off = ModelConfig(num_styles=3, hidden_size=8, num_layers=2)
    on = dataclasses.replace(off, note_readout=5)
    shapes_off, shapes_on = model.expected_param_shapes(off), model.expected_param_shapes(on)
    added = {k: v for k, v in shapes_on.items() if k not in shapes_off}
    assert {k: v for k, v in shapes_on.items() if k in shapes_off} == shapes_off
    c = len(note_readout.CELL_FEATURES)
    assert added == {"heads/note_readout/state/kernel": (3, 16, 5),
                     "heads/note_readout/state/bias": (3, 5),
                     "heads/note_readout/cell/kernel": (3, c, 5),
                     "heads/note_readout/key_embedding": (3, 88, 5),
                     "heads/note_readout/v/kernel": (3, 5, 1)}


def test_an_untrained_readout_plays_as_the_paper_readout_and_training_moves_it():
    cfg = ModelConfig(num_styles=2, hidden_size=8, num_layers=1, note_readout=4, keep_prob=1.0)
    x = grid(12, [(40, 0, 5), (44, 2, 12), (47, 6, 9), (30, 6, 7)])
    lengths = np.array([12], np.int32)
    params = _params(cfg, x, lengths)
    paper = {**params, "heads": {k: v for k, v in params["heads"].items()
                                 if k != "note_readout"}}
    with_readout = model.predict(params, x, lengths, config=cfg)
    np.testing.assert_array_equal(
        with_readout,
        model.predict(paper, x, lengths, config=dataclasses.replace(cfg, note_readout=0)))
    grads = jax.grad(lambda p: jnp.sum(model.predict(p, x, lengths, config=cfg) ** 2))(params)
    assert float(jnp.abs(grads["heads"]["note_readout"]["v"]["kernel"]).max()) > 0
    moved = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    after = model.predict(moved, x, lengths, config=cfg)
    assert float(jnp.abs(after - with_readout).max()) > 1e-4


def test_padding_never_reaches_real_steps_and_gradients_are_finite():
    cfg = ModelConfig(num_styles=2, hidden_size=8, num_layers=1, note_readout=4,
                      keep_prob=1.0)
    x = grid(12, [(40, 0, 5), (44, 2, 12), (47, 6, 9)])
    lengths = np.array([7], np.int32)
    params = _params(cfg, x, lengths)
    params["heads"]["note_readout"]["v"]["kernel"] += 0.3  # as if trained: the readout acts
    vel = model.predict(params, x, lengths, config=cfg)
    padded = x.copy()
    padded[0, 7:] = 1  # garbage after the row's length
    np.testing.assert_array_equal(model.predict(params, padded, lengths, config=cfg)[:, :, :7],
                                  vel[:, :, :7])
    assert float(jnp.abs(vel[:, :, 7:]).max()) == 0.0
    grads = jax.grad(lambda p: jnp.sum(model.predict(p, x, lengths, config=cfg) ** 2))(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


def test_a_negative_width_is_refused():
    with pytest.raises(ValueError, match="note_readout"):
        ModelConfig(note_readout=-1)
