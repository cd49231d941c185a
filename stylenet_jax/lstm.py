"""The LSTM maths of StyleNet, without Flax: the cell, the fused two-direction time scan with
its hand-written backward pass, and the optionally-bfloat16 matmul.

Conventions (every LSTM of the project):
  * gate order in the 4H axis of every weight and bias: i (input), f (forget), g (cell
    candidate), o (output); ``c' = sig(f) c + sig(i) tanh(g)``, ``h' = sig(o) tanh(c')``.
  * activations are time-major (T, N, F): the input-to-gates matmul of both directions is
    hoisted out of the time scan as one plain (T*N, F) x (F, D*4H) matmul, and the forward and
    backward directions of a layer run in ONE ``lax.scan`` with stacked weights (D, H, 4H),
    D = 2 directions. The scan has a hand-written backward pass (``lstm_recurrence``) that
    computes the recurrent weights' gradient as one matmul.
  * padding: row n has ``lengths[n]`` real steps (0..T) followed by padding. State is frozen at
    padded steps, so padding never affects outputs at real steps, and the backward direction
    (which reads time from T-1 down, starting from zeros) begins at each row's own last real
    step. Outputs at padded steps are 0.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from stylenet_jax.config import RECURRENCES

Array = jax.Array


class LSTMState(NamedTuple):
    """LSTM state: h and c, float32, shape (..., N, H)."""

    h: Array
    c: Array


# ----------------------------------------------------------------------------- pure functions


def lstm_gates(z: Array) -> tuple[Array, Array, Array, Array]:
    """Activated gates (i, f, g, o), each (..., H), from pre-activations z (..., 4H)."""
    i, f, g, o = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def lstm_cell(z: Array, c: Array) -> tuple[Array, Array]:
    """One LSTM update from gate pre-activations z (..., 4H) [i, f, g, o] and cell c (..., H)."""
    i, f, g, o = lstm_gates(z)
    c = f * c + i * g
    return o * jnp.tanh(c), c


def matmul(subscripts: str, a: Array, b: Array, precision: str | None = None,
           dtype: str = "float32") -> Array:
    """``jnp.einsum`` of float32 a and b (two operands, each index of one operand also in the
    other or in the output) with float32 result. ``dtype="bfloat16"`` rounds the inputs to
    bfloat16 (float32 accumulation), and its gradient does the same with the incoming
    gradient, so the backward pass's matmuls run in bfloat16 too."""
    if dtype == "float32":
        return jnp.einsum(subscripts, a, b, precision=precision,
                          preferred_element_type=jnp.float32)
    return _low_precision_einsum(subscripts, a, b, precision, dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3, 4))
def _low_precision_einsum(subscripts: str, a: Array, b: Array, precision: str | None,
                          dtype: str) -> Array:
    return _low_precision_einsum_fwd(subscripts, a, b, precision, dtype)[0]


def _low_precision_einsum_fwd(subscripts, a, b, precision, dtype):
    a, b = a.astype(dtype), b.astype(dtype)
    return jnp.einsum(subscripts, a, b, precision=precision,
                      preferred_element_type=jnp.float32), (a, b)


def _low_precision_einsum_bwd(subscripts, precision, dtype, rounded, g):
    a, b = rounded
    inputs, out = subscripts.split("->")
    sa, sb = inputs.split(",")
    g = g.astype(dtype)
    da = jnp.einsum(f"{out},{sb}->{sa}", g, b, precision=precision,
                    preferred_element_type=jnp.float32)
    db = jnp.einsum(f"{sa},{out}->{sb}", a, g, precision=precision,
                    preferred_element_type=jnp.float32)
    return da, db


_low_precision_einsum.defvjp(_low_precision_einsum_fwd, _low_precision_einsum_bwd)


def dense_dot_general(dtype: str) -> Any:
    """A ``dot_general`` for ``nn.Dense`` (inputs' last axis x kernel's first) through
    ``matmul``, so the output layer follows ``matmul_dtype`` forward and backward."""

    def dot_general(a, b, dimension_numbers, precision=None, preferred_element_type=None):
        if tuple(map(tuple, dimension_numbers[0])) != ((a.ndim - 1,), (0,)) or any(
                dimension_numbers[1]):
            raise ValueError(f"unexpected Dense dimension numbers {dimension_numbers}")
        return matmul("...i,io->...o", a, b, precision, dtype)

    return dot_general


# The time recurrence of a fused layer. Shapes: proj (T, N, D, 4H) float32, the input
# projections x @ w_ih of every time step and direction (no bias); w_hh (D, H, 4H); b (D, 4H);
# lengths (N,) int32; state (D, N, H) each. Iteration i of the scan advances direction 0 at
# time i and direction 1 (backward) at time T-1-i, reading and writing (T, N, D, ...) buffers
# in place by dynamic slicing, so no reversed or transposed copy of them is ever made. Output:
# out (T, N, D*H) [forward | backward] hidden states, 0 at padded steps; the state after each
# row's last real step (frozen through padding).


def _positions_at(i: Array, t: int, d: int) -> list[Array]:
    """The time position of each direction at scan iteration i: [i] (one direction) or
    [i, T-1-i] (forward, backward)."""
    return [i] if d == 1 else [i, t - 1 - i]


def _read_steps(buf: Array, positions: list[Array]) -> Array:
    """(T, N, D, K) -> (D, N, K): direction j's row at time ``positions[j]``."""
    return jnp.stack([jax.lax.dynamic_index_in_dim(buf, tj, 0, keepdims=False)[:, j]
                      for j, tj in enumerate(positions)])


def _write_steps(buf: Array, values: Array, positions: list[Array]) -> Array:
    """Writes values (D, N, K) into buf (T, N, D, K) where ``_read_steps`` reads them."""
    for j, tj in enumerate(positions):
        buf = jax.lax.dynamic_update_slice(buf, values[j][None, :, None], (tj, 0, j, 0))
    return buf


def _unpadded(positions: list[Array], lengths: Array) -> Array:
    """(D, N, 1) bool: direction j's position is a step of row n, not padding (< its length)."""
    return (jnp.stack(positions)[:, None] < lengths)[..., None]


def _recurrence_forward(proj, w_hh, b, lengths, state0, unroll, precision, dtype, *, save):
    t, n, d, h4 = proj.shape
    out0 = jnp.zeros((t, n, d, h4 // 4), proj.dtype)

    def step(carry, i):
        state, out, h_prev = carry
        positions = _positions_at(i, t, d)
        m = _unpadded(positions, lengths)
        z = _read_steps(proj, positions) + b[:, None] + matmul("dnh,dhk->dnk", state.h, w_hh,
                                                           precision, dtype)
        gi, gf, gg, go = lstm_gates(z)
        c = gf * state.c + gi * gg
        tanh_c = jnp.tanh(c)
        h = go * tanh_c
        out = _write_steps(out, jnp.where(m, h, 0.0), positions)
        saved = None
        if save:  # what the backward pass needs; h_prev in time order for one dw_hh matmul
            h_prev = _write_steps(h_prev, state.h, positions)
            saved = (jnp.concatenate([gi, gf, gg, go], -1), tanh_c, state.c)
        new = LSTMState(jnp.where(m, h, state.h), jnp.where(m, c, state.c))
        return (new, out, h_prev), saved

    h_prev0 = out0 if save else None
    (final, out, h_prev), saved = jax.lax.scan(step, (state0, out0, h_prev0), jnp.arange(t),
                                               unroll=unroll)
    return out.reshape(t, n, -1), final, h_prev, saved


def _recurrence_autodiff(proj: Array, w_hh: Array, b: Array, lengths: Array, state0: LSTMState,
                         unroll: int, precision: str | None,
                         dtype: str) -> tuple[Array, LSTMState]:
    """The recurrence as a plain ``lax.scan`` over time-ordered inputs that JAX differentiates
    itself (the backward direction's inputs and outputs reversed by copies)."""
    t, n, d, _ = proj.shape
    unpadded = (jnp.arange(t)[:, None] < lengths)[..., None]  # (T, N, 1)
    zx = jnp.stack([proj[:, :, 0], proj[::-1, :, 1]][:d], axis=1) + b[:, None]  # (T, D, N, 4H)
    mask = jnp.stack([unpadded, unpadded[::-1]][:d], axis=1)  # (T, D, N, 1)

    def step(state: LSTMState, inp: tuple[Array, Array]) -> tuple[LSTMState, Array]:
        z_t, m_t = inp
        h, c = lstm_cell(z_t + matmul("dnh,dhk->dnk", state.h, w_hh, precision, dtype), state.c)
        new = LSTMState(jnp.where(m_t, h, state.h), jnp.where(m_t, c, state.c))
        return new, jnp.where(m_t, h, 0.0)

    final, hs = jax.lax.scan(step, state0, (zx, mask), unroll=unroll)  # hs (T, D, N, H)
    return jnp.concatenate([hs[:, 0], hs[::-1, 1]][:d], -1), final


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def lstm_recurrence(proj: Array, w_hh: Array, b: Array, lengths: Array, state0: LSTMState,
                    unroll: int, precision: str | None, dtype: str) -> tuple[Array, LSTMState]:
    """The recurrence with a hand-written backward pass (same maths as ``_recurrence_autodiff``).

    JAX's derivative of a scan adds each step's ``h_{t-1}^T dz_t`` into a (D, H, 4H) gradient
    carried through the backward loop: a small matmul and a read-modify-write of the whole
    recurrent matrix at every step. Here the backward loop only carries (dh, dc) and writes
    each step's gate gradient dz_t in place; ``dw_hh`` is then ONE matmul over all steps, as
    cuDNN does it.
    """
    out, final, _, _ = _recurrence_forward(proj, w_hh, b, lengths, state0, unroll, precision,
                                           dtype, save=False)
    return out, final


def _lstm_recurrence_fwd(proj, w_hh, b, lengths, state0, unroll, precision, dtype):
    out, final, h_prev, saved = _recurrence_forward(proj, w_hh, b, lengths, state0, unroll,
                                                    precision, dtype, save=True)
    return (out, final), (w_hh, lengths, h_prev, saved)


def _lstm_recurrence_bwd(unroll, precision, dtype, residuals, cotangents):
    w_hh, lengths, h_prev, (gates, tanh_c, c_prev) = residuals
    d_out, d_final = cotangents
    t, n, d, h = h_prev.shape
    d_out = d_out.reshape(t, n, d, h)
    w_hh_t = jnp.swapaxes(w_hh, 1, 2).astype(dtype)  # (D, 4H, H): once, not at every step

    def step(carry, inp):
        dh_next, dc_next, d_proj = carry
        i, gates_i, tanh_c_i, c_prev_i = inp
        positions = _positions_at(i, t, d)
        m = _unpadded(positions, lengths)
        dh = jnp.where(m, dh_next + _read_steps(d_out, positions), 0.0)  # frozen steps: no cell
        dc = jnp.where(m, dc_next, 0.0)
        gi, gf, gg, go = jnp.split(gates_i, 4, axis=-1)
        dc = dc + dh * go * (1.0 - tanh_c_i * tanh_c_i)
        dz = jnp.concatenate([dc * gg * gi * (1.0 - gi), dc * c_prev_i * gf * (1.0 - gf),
                              dc * gi * (1.0 - gg * gg), dh * tanh_c_i * go * (1.0 - go)], -1)
        d_proj = _write_steps(d_proj, dz, positions)
        dh_prev = matmul("dnk,dkh->dnh", dz, w_hh_t, precision, dtype)
        dh_prev = dh_prev + jnp.where(m, 0.0, dh_next)
        dc_prev = jnp.where(m, dc * gf, dc_next)
        return (dh_prev, dc_prev, d_proj), None

    init = (d_final.h, d_final.c, jnp.zeros((t, n, d, 4 * h), gates.dtype))
    (dh0, dc0, d_proj), _ = jax.lax.scan(step, init, (jnp.arange(t), gates, tanh_c, c_prev),
                                         reverse=True, unroll=unroll)
    d_w_hh = matmul("tndh,tndk->dhk", h_prev, d_proj, precision, dtype)
    return d_proj, d_w_hh, d_proj.sum((0, 1)), None, LSTMState(dh0, dc0)


lstm_recurrence.defvjp(_lstm_recurrence_fwd, _lstm_recurrence_bwd)


def fused_lstm(
    w_ih: Array,
    w_hh: Array,
    b: Array,
    x: Array,
    lengths: Array,
    initial: LSTMState | None = None,
    *,
    unroll: int = 1,
    precision: str | None = None,
    recurrence: str = "custom_vjp",
    matmul_dtype: str = "float32",
) -> tuple[Array, LSTMState]:
    """One (bi)directional LSTM layer, TIME-MAJOR, both directions in one scan.

    Args:
      w_ih: (D, F, 4H), w_hh: (D, H, 4H), b: (D, 4H) float32; direction 0 is forward and, if
        D == 2, direction 1 is backward.
      x: (T, N, F) float32, time-major. lengths: (N,) int32 real steps per row.
      initial: forward-direction initial state, each (N, H); None = zeros. The backward
        direction always starts from zeros at each row's last real step.
      recurrence: one of ``RECURRENCES``: "custom_vjp" (``lstm_recurrence``'s hand-written
        backward pass) or "autodiff" (JAX differentiates the scan); same outputs, gradients
        equal up to float rounding.
      matmul_dtype: "float32" or "bfloat16" inputs to every matmul (see ``matmul``).
    Returns:
      out: (T, N, D*H) float32, [forward | backward] hidden states, 0 at padded steps.
      final: forward state (N, H) after each row's last real step (= ``initial`` if length 0).

    Both directions' input projections are ONE (T*N, F) x (F, D*4H) matmul. The backward
    direction reads time in plain reverse, T-1 down to 0: a row's padding then comes first,
    where its state is frozen at zeros, so it starts at the row's own last real step.
    """
    if recurrence not in RECURRENCES:
        raise ValueError(f"recurrence must be one of {RECURRENCES}, got {recurrence!r}")
    d, f, h4 = w_ih.shape
    t, n, _ = x.shape
    w = jnp.moveaxis(w_ih, 0, 1).reshape(f, d * h4)  # (F, D*4H): [forward | backward] gates
    proj = matmul("mf,fk->mk", x.reshape(t * n, f), w, precision, matmul_dtype)
    zeros = jnp.zeros((n, h4 // 4), x.dtype)
    initial = LSTMState(zeros, zeros) if initial is None else initial
    state0 = LSTMState(*(jnp.stack([s] + [zeros] * (d - 1)) for s in initial))  # (D, N, H)
    run = lstm_recurrence if recurrence == "custom_vjp" else _recurrence_autodiff
    out, final = run(proj.reshape(t, n, d, h4), w_hh, b, jnp.asarray(lengths, jnp.int32), state0,
                     unroll, precision, matmul_dtype)
    return out, LSTMState(final.h[0], final.c[0])
