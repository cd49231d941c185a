"""A plain one-direction LSTM the tests check ``lstm.fused_lstm`` against (not library code)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stylenet_jax.lstm import LSTMState, lstm_cell

Array = jax.Array


def reference_lstm(
    w_ih: Array,
    w_hh: Array,
    b: Array,
    x: Array,
    lengths: Array,
    initial: LSTMState | None = None,
    *,
    reverse: bool = False,
    precision: str | None = None,
) -> tuple[Array, LSTMState]:
    """Plain one-direction LSTM (for tests): input matmul inside the step, no reversal gather.

    w_ih (F, 4H), w_hh (H, 4H), b (4H,); x (N, T, F); lengths (N,). ``reverse=True`` scans
    from t = T-1 down to 0; the state stays at ``initial`` through the padding, so it starts at
    each row's last real step. Returns h (N, T, H) (0 at padded steps) and the final state.
    """
    n, t, _ = x.shape
    zeros = jnp.zeros((n, w_hh.shape[0]), x.dtype)
    initial = LSTMState(zeros, zeros) if initial is None else initial
    mask = (jnp.arange(t)[:, None] < lengths)[..., None]  # (T, N, 1)

    def step(state: LSTMState, inp: tuple[Array, Array]) -> tuple[LSTMState, Array]:
        x_t, m = inp
        z = (jnp.dot(x_t, w_ih, precision=precision)
             + jnp.dot(state.h, w_hh, precision=precision) + b)
        h, c = lstm_cell(z, state.c)
        return LSTMState(jnp.where(m, h, state.h), jnp.where(m, c, state.c)), jnp.where(m, h, 0.0)

    final, hs = jax.lax.scan(step, initial, (x.swapaxes(0, 1), mask), reverse=reverse)
    return hs.swapaxes(0, 1), final
