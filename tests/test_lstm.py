"""Tests of stylenet_jax.lstm: the fused two-direction LSTM and its hand-written backward
pass against a plain one-direction LSTM (tests/reference_lstm.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reference_lstm import reference_lstm
from stylenet_jax.lstm import LSTMState, fused_lstm

H = 8


def _close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


def _reference_layer(p, x, lengths, init, bidirectional):
    """Plain reference of one fused layer: one reference_lstm per direction, batch-major."""
    fwd, final = reference_lstm(p["w_ih"][0], p["w_hh"][0], p["b"][0], x, lengths, init,
                                precision="highest")
    outs = [fwd]
    if bidirectional:
        outs.append(reference_lstm(p["w_ih"][1], p["w_hh"][1], p["b"][1], x, lengths, reverse=True,
                                   precision="highest")[0])
    return jnp.concatenate(outs, -1), final


def _layer_case(bidirectional, unroll, recurrence="custom_vjp"):
    n, t, f = 4, 15, 6
    x = jax.random.normal(jax.random.key(5), (n, t, f))
    lengths = jnp.array([15, 6, 0, 11])
    d = 2 if bidirectional else 1
    k = jax.random.split(jax.random.key(6), 3)
    p = {"w_ih": 0.4 * jax.random.normal(k[0], (d, f, 4 * H)),
         "w_hh": 0.4 * jax.random.normal(k[1], (d, H, 4 * H)),
         "b": 0.1 * jax.random.normal(k[2], (d, 4 * H))}
    init = LSTMState(*jax.random.normal(jax.random.key(8), (2, n, H)))

    def layer(p, x_time_major, lengths, init):
        return fused_lstm(p["w_ih"], p["w_hh"], p["b"], x_time_major, lengths, init,
                          unroll=unroll, precision="highest", recurrence=recurrence)

    return layer, p, x, lengths, init


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("unroll", [1, 3])
def test_fused_layer_equals_reference(bidirectional, unroll):
    layer, p, x, lengths, init = _layer_case(bidirectional, unroll)
    out, final = jax.jit(layer)(p, x.swapaxes(0, 1), lengths, init)
    ref, ref_final = jax.jit(_reference_layer, static_argnums=4)(p, x, lengths, init, bidirectional)
    _close(out.swapaxes(0, 1), ref, 1e-5)
    jax.tree.map(lambda a, b: _close(a, b, 1e-5), final, ref_final)
    assert bool(jnp.all(final.h[2] == init.h[2]))  # length-0 row keeps its state


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("recurrence,unroll",
                         [("custom_vjp", 1), ("custom_vjp", 4), ("autodiff", 1)])
def test_fused_layer_gradients_equal_reference(bidirectional, recurrence, unroll):
    """Gradients of the optimised layer (custom backward pass) = autodiff of the plain LSTM:
    for every weight, the inputs and the initial state, through outputs AND the final state."""
    layer, p, x, lengths, init = _layer_case(bidirectional, unroll, recurrence)
    k = jax.random.split(jax.random.key(9), 3)
    w_out = jax.random.normal(k[0], (x.shape[0], x.shape[1], H * (2 if bidirectional else 1)))
    w_h, w_c = jax.random.normal(k[1], (x.shape[0], H)), jax.random.normal(k[2], (x.shape[0], H))

    def score(out, final):  # batch-major out; a loss that reaches every output and final state
        return jnp.sum(jnp.tanh(out) * w_out) + jnp.sum(final.h * w_h) + jnp.sum(final.c ** 2 * w_c)

    def fused(p, x, init):
        out, final = layer(p, x.swapaxes(0, 1), lengths, init)
        return score(out.swapaxes(0, 1), final)

    def plain(p, x, init):
        return score(*_reference_layer(p, x, lengths, init, bidirectional))

    got = jax.jit(jax.grad(fused, argnums=(0, 1, 2)))(p, x, init)
    want = jax.jit(jax.grad(plain, argnums=(0, 1, 2)))(p, x, init)
    flat_got, flat_want = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(flat_got) == len(flat_want)
    for a, b in zip(flat_got, flat_want):
        assert float(jnp.abs(b).max()) > 0  # every gradient is exercised
        _close(a, b, 1e-5)
