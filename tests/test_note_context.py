"""Tests of stylenet_jax.note_context and ModelConfig.note_context (small, CPU-fast)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from stylenet_jax import model, note_context
from stylenet_jax.config import ModelConfig


def grid(steps: int, notes) -> np.ndarray:
    """(1, steps, 176) uint8 input from (key, start, end) notes, in encoding's layout."""
    x = np.zeros((1, steps, 176), np.uint8)
    for key, start, end in notes:
        x[0, start, 2 * key] = 1
        x[0, start:end, 2 * key + 1] = 1
    return x


def test_channels_say_top_bottom_duration_chord_and_beat():
    # A C major chord at step 0 (keys 39, 43, 46; the top one held 6 steps), a re-struck
    # bass key at step 2 (key 39 again), and a melody note at step 5 above everything.
    x = grid(8, [(39, 0, 2), (43, 0, 3), (46, 0, 6), (39, 2, 4), (50, 5, 8)])
    c = np.asarray(note_context.context_channels(jnp.asarray(x)))[0]
    assert c.shape == (8, note_context.NUM_CONTEXT_CHANNELS)
    top, bottom, duration = c[:, :88], c[:, 88:176], c[:, 176:264]
    chord, beat = c[:, 264], c[:, 265:]
    assert [int(np.argmax(top[t])) for t in range(8)] == [46] * 5 + [50] * 3
    assert [int(np.argmax(bottom[t])) for t in range(8)] == [39] * 4 + [46] * 2 + [50] * 2
    assert top.sum(-1).tolist() == [1.0] * 8 and bottom.sum(-1).tolist() == [1.0] * 8
    assert duration[0, 39] == 2 / 16 and duration[0, 43] == 3 / 16
    assert duration[0, 46] == 6 / 16 and duration[2, 39] == 2 / 16  # re-struck: a new note
    assert duration[5, 50] == 3 / 16  # cut by the window's end
    assert np.count_nonzero(duration) == 5  # onsets only
    np.testing.assert_allclose(chord, [0.3, 0, 0.1, 0, 0, 0.1, 0, 0], atol=1e-7)
    assert beat.argmax(-1).tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


def test_durations_stop_at_a_release_and_are_capped():
    x = grid(100, [(10, 0, 90), (20, 3, 4)])
    d = np.asarray(note_context.context_channels(jnp.asarray(x)))[0, :, 176:264]
    assert d[0, 10] == 64 / 16 and d[3, 20] == 1 / 16


def test_off_is_the_paper_network_and_on_widens_only_the_first_layer():
    off = ModelConfig(num_styles=2, hidden_size=8, num_layers=2)
    on = dataclasses.replace(off, note_context=True)
    shapes_off, shapes_on = model.expected_param_shapes(off), model.expected_param_shapes(on)
    changed = {k for k in shapes_off if shapes_off[k] != shapes_on[k]}
    assert changed == {"interpretation_lstm/w_ih"}
    assert shapes_on["interpretation_lstm/w_ih"][1] == 176 + note_context.NUM_CONTEXT_CHANNELS
    no_interp = dataclasses.replace(on, use_interpretation_layer=False)
    assert model.expected_param_shapes(no_interp)["heads/layer_0/w_ih"][2] == 445


def test_padding_never_reaches_real_steps_and_gradients_are_finite():
    cfg = ModelConfig(num_styles=2, hidden_size=8, num_layers=1, note_context=True,
                      keep_prob=1.0)
    x = grid(12, [(40, 0, 5), (44, 2, 12), (47, 6, 9)])
    lengths = np.array([7], np.int32)
    params = jax.jit(lambda k: model.StyleNet(cfg).init(
        k, jnp.asarray(x), lengths, train=False)["params"])(jax.random.key(0))
    vel = model.predict(params, x, lengths, config=cfg)
    padded = x.copy()
    padded[0, 7:] = 1  # garbage after the row's length
    np.testing.assert_array_equal(model.predict(params, padded, lengths, config=cfg)[:, :, :7],
                                  vel[:, :, :7])
    assert float(jnp.abs(vel[:, :, 7:]).max()) == 0.0
    grads = jax.grad(lambda p: jnp.sum(model.predict(p, x, lengths, config=cfg) ** 2))(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
