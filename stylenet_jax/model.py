"""StyleNet (Malik & Ek, 2017) as one Flax module.

A shared unidirectional LSTM "interpretation layer" reads quantised notes (N, T, 176); one
"GenreNet" head per style (stacked bidirectional LSTMs + a linear layer to 88 + sigmoid)
predicts every note's velocity in [0, 1]. The S heads are one parameter tree with a leading
style axis, applied with ``nn.vmap``, so any number of styles is one compiled computation.

LSTM conventions (all LSTMs here):
  * gate order in the 4H axis of every weight and bias: i (input), f (forget), g (cell
    candidate), o (output); ``c' = sig(f) c + sig(i) tanh(g)``, ``h' = sig(o) tanh(c')``;
    forget-gate bias initialised to 1.0.
  * inside the model, activations are time-major (T, N, F): the input-to-gates matmul of both
    directions is hoisted out of the time scan as one plain (T*N, F) x (F, D*4H) matmul, and
    the forward and backward directions of a layer run in ONE ``lax.scan`` with stacked
    weights (D, H, 4H), D = 2 directions. The scan has a hand-written backward pass
    (``lstm_recurrence``) that computes the recurrent weights' gradient as one matmul.
  * padding: row n has ``lengths[n]`` real steps (0..T) followed by padding. State is frozen at
    padded steps, so padding never affects outputs at real steps, and the backward direction
    (which reads time from T-1 down, starting from zeros) begins at each row's own last real
    step. Outputs (hidden states and velocities) at padded steps are 0.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
_PRECISIONS = (None, "default", "high", "highest")
RECURRENCES = ("custom_vjp", "autodiff")
MATMUL_DTYPES = ("float32", "bfloat16")
SPEED_ONLY_FIELDS = ("unroll", "recurrence")  # ModelConfig fields that leave the maths alone


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """StyleNet hyper-parameters (JSON-serialisable with ``dataclasses.asdict``).

    keep_prob: keep probability of the dropout on every LSTM's inputs and outputs (the paper's
      DropoutWrapper; 0.8 default, 0.5 in its Fig. 15 ablation, 1.0 = no dropout).
    unroll: ``lax.scan`` unroll factor of the time loops.
    recurrence: how the LSTM time loop is differentiated (see ``RECURRENCES``); speed only.
    matmul_dtype: "float32", or "bfloat16": every matmul's inputs are rounded to bfloat16 and
      accumulated in float32 (faster on hardware with bf16 units; the LSTM state, gates and
      parameters stay float32). Changes results slightly.
    precision: matmul precision (None/"default", "high", "highest"); "highest" gives true fp32
      matmuls on GPUs that would otherwise use TF32.
    """

    num_styles: int = 2
    hidden_size: int = 176
    num_layers: int = 3
    bidirectional: bool = True
    use_interpretation_layer: bool = True
    keep_prob: float = 0.8
    input_size: int = 176
    output_size: int = 88
    unroll: int = 1
    precision: str | None = None
    recurrence: str = "custom_vjp"
    matmul_dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("num_styles", "hidden_size", "num_layers", "input_size", "output_size", "unroll"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {self.keep_prob}")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {self.recurrence!r}")
        if self.matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}, got {self.matmul_dtype!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of ``dataclasses.asdict``; unknown keys are an error."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {sorted(unknown)}")
        return cls(**d)


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


def _dot_general(dtype: str) -> Any:
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


def _times(i: Array, t: int, d: int) -> list[Array]:
    """Time index of each direction at scan iteration i: [i] or [i, T-1-i]."""
    return [i] if d == 1 else [i, t - 1 - i]


def _read_steps(buf: Array, times: list[Array]) -> Array:
    """(T, N, D, K) -> (D, N, K): direction j's row at time ``times[j]``."""
    return jnp.stack([jax.lax.dynamic_index_in_dim(buf, tj, 0, keepdims=False)[:, j]
                      for j, tj in enumerate(times)])


def _write_steps(buf: Array, values: Array, times: list[Array]) -> Array:
    """Writes values (D, N, K) into buf (T, N, D, K) where ``_read_steps`` reads them."""
    for j, tj in enumerate(times):
        buf = jax.lax.dynamic_update_slice(buf, values[j][None, :, None], (tj, 0, j, 0))
    return buf


def _real(times: list[Array], lengths: Array) -> Array:
    """(D, N, 1) bool: is direction j's time a real step of row n."""
    return (jnp.stack(times)[:, None] < lengths)[..., None]


def _recurrence_forward(proj, w_hh, b, lengths, state0, unroll, precision, dtype, *, save):
    t, n, d, h4 = proj.shape
    out0 = jnp.zeros((t, n, d, h4 // 4), proj.dtype)

    def step(carry, i):
        state, out, h_prev = carry
        times = _times(i, t, d)
        m = _real(times, lengths)
        z = _read_steps(proj, times) + b[:, None] + matmul("dnh,dhk->dnk", state.h, w_hh,
                                                           precision, dtype)
        gi, gf, gg, go = lstm_gates(z)
        c = gf * state.c + gi * gg
        tanh_c = jnp.tanh(c)
        h = go * tanh_c
        out = _write_steps(out, jnp.where(m, h, 0.0), times)
        saved = None
        if save:  # what the backward pass needs; h_prev in time order for one dw_hh matmul
            h_prev = _write_steps(h_prev, state.h, times)
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
    real = (jnp.arange(t)[:, None] < lengths)[..., None]  # (T, N, 1)
    zx = jnp.stack([proj[:, :, 0], proj[::-1, :, 1]][:d], axis=1) + b[:, None]  # (T, D, N, 4H)
    mask = jnp.stack([real, real[::-1]][:d], axis=1)  # (T, D, N, 1)

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
        times = _times(i, t, d)
        m = _real(times, lengths)
        dh = jnp.where(m, dh_next + _read_steps(d_out, times), 0.0)  # frozen steps: no cell
        dc = jnp.where(m, dc_next, 0.0)
        gi, gf, gg, go = jnp.split(gates_i, 4, axis=-1)
        dc = dc + dh * go * (1.0 - tanh_c_i * tanh_c_i)
        dz = jnp.concatenate([dc * gg * gi * (1.0 - gi), dc * c_prev_i * gf * (1.0 - gf),
                              dc * gi * (1.0 - gg * gg), dh * tanh_c_i * go * (1.0 - go)], -1)
        d_proj = _write_steps(d_proj, dz, times)
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
        z = jnp.dot(x_t, w_ih, precision=precision) + jnp.dot(state.h, w_hh, precision=precision) + b
        h, c = lstm_cell(z, state.c)
        return LSTMState(jnp.where(m, h, state.h), jnp.where(m, c, state.c)), jnp.where(m, h, 0.0)

    final, hs = jax.lax.scan(step, initial, (x.swapaxes(0, 1), mask), reverse=reverse)
    return hs.swapaxes(0, 1), final


def initial_carry(config: ModelConfig, n: int) -> dict[str, LSTMState]:
    """Zero carry for a batch of n rows (float32).

    ``{'interpretation': LSTMState((n, H), (n, H))`` (only with the interpretation layer),
    ``'heads': LSTMState((S, L, n, H), (S, L, n, H))}`` (forward direction of each head layer).
    """
    s, l, h = config.num_styles, config.num_layers, config.hidden_size
    carry = {"heads": LSTMState(jnp.zeros((s, l, n, h)), jnp.zeros((s, l, n, h)))}
    if config.use_interpretation_layer:
        carry["interpretation"] = LSTMState(jnp.zeros((n, h)), jnp.zeros((n, h)))
    return carry


def reset_carry(carry: Any, reset: Array) -> Any:
    """Zero the rows of every carry leaf (..., N, H) where ``reset`` (N,) bool is True."""
    return jax.tree.map(lambda a: jnp.where(reset[:, None], 0.0, a), carry)


def is_head_param(path: tuple) -> bool:
    """True for a key path (``jax.tree_util`` style) inside ``heads``: a leaf with a style axis."""
    return any(getattr(k, "key", None) == "heads" for k in path)


def count_params(params: Any) -> int:
    """Total number of scalars in a parameter pytree."""
    return sum(int(a.size) for a in jax.tree.leaves(params))


# ----------------------------------------------------------------------------- modules


def _uniform(limit: float) -> Any:
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -limit, limit)


def _lstm_bias(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
    h = shape[-1] // 4
    return jnp.zeros(shape, dtype).at[..., h : 2 * h].set(1.0)  # forget gate = 1.0


class LSTMLayer(nn.Module):
    """Fused LSTM layer, time-major: (T, N, F) -> (T, N, D*H), D = 2 if bidirectional else 1.

    Params: w_ih (D, F, 4H), w_hh (D, H, 4H), b (D, 4H). Weights are initialised like the
    paper's TF BasicLSTMCell: glorot-uniform on the joint [x, h] kernel, U(+-sqrt(6/(F+5H))).
    """

    hidden_size: int
    bidirectional: bool = False
    unroll: int = 1
    precision: str | None = None
    recurrence: str = "custom_vjp"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: Array, lengths: Array, initial: LSTMState | None = None) -> tuple[Array, LSTMState]:
        """x: (T, N, F) float32; lengths: (N,) int32; see ``fused_lstm``."""
        d, f, h = 2 if self.bidirectional else 1, x.shape[-1], self.hidden_size
        init = _uniform((6.0 / (f + 5 * h)) ** 0.5)
        w_ih = self.param("w_ih", init, (d, f, 4 * h))
        w_hh = self.param("w_hh", init, (d, h, 4 * h))
        b = self.param("b", _lstm_bias, (d, 4 * h))
        return fused_lstm(w_ih, w_hh, b, x, lengths, initial, unroll=self.unroll,
                          precision=self.precision, recurrence=self.recurrence,
                          matmul_dtype=self.matmul_dtype)


class GenreNet(nn.Module):
    """One style head: L stacked (bi)LSTM layers + Dense(output_size) + sigmoid.

    Time-major (T, N, F) -> velocities (T, N, output_size) in [0, 1]; carry: forward states
    (L, N, H).
    """

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array, lengths: Array, carry: LSTMState) -> tuple[Array, LSTMState]:
        cfg = self.config
        drop = nn.Dropout(1.0 - cfg.keep_prob, deterministic=self.deterministic)
        states = []
        for l in range(cfg.num_layers):
            layer = LSTMLayer(cfg.hidden_size, cfg.bidirectional, cfg.unroll, cfg.precision,
                              cfg.recurrence, cfg.matmul_dtype, name=f"layer_{l}")
            x, state = layer(drop(x), lengths, LSTMState(carry.h[l], carry.c[l]))
            x = drop(x)
            states.append(state)
        y = nn.Dense(cfg.output_size, precision=cfg.precision,
                     dot_general=_dot_general(cfg.matmul_dtype), name="out")(x)
        return jax.nn.sigmoid(y), LSTMState(*(jnp.stack(s) for s in zip(*states)))


class StyleNet(nn.Module):
    """StyleNet: shared interpretation LSTM + S vmapped GenreNet heads.

    Params: ``interpretation_lstm`` {w_ih, w_hh, b} (if used) and ``heads`` {layer_0.., out}, every
    head leaf with a leading style axis S.
    """

    config: ModelConfig

    @nn.compact
    def __call__(
        self, inputs: Array, lengths: Array, *, train: bool, carry: dict[str, LSTMState] | None = None
    ) -> tuple[Array, dict[str, LSTMState]]:
        """Predict velocities for every style.

        Args:
          inputs: (N, T, input_size) float32 or uint8 (cast to float32).
          lengths: (N,) int32, real steps per row (0..T); the rest is padding and ignored.
          train: apply dropout (needs ``rngs={'dropout': key}``); False is deterministic.
          carry: forward LSTM states from the previous window (see ``initial_carry``);
            None = zeros.
        Returns:
          velocities: (S, N, T, output_size) float32 in [0, 1]; 0 at padded steps.
          new_carry: same structure as ``initial_carry``: every forward-running LSTM's state
            after each row's last real step (unchanged for rows of length 0).
        Sows ``intermediates/interpretation``: interpretation-layer outputs (N, T, H).
        """
        cfg = self.config
        if inputs.ndim != 3 or inputs.shape[-1] != cfg.input_size:
            raise ValueError(f"inputs must be (N, T, {cfg.input_size}), got {inputs.shape}")
        n, t, _ = inputs.shape
        lengths = jnp.asarray(lengths, jnp.int32)
        mask = (jnp.arange(t)[:, None] < lengths)[..., None]  # (T, N, 1)
        x = jnp.where(mask, jnp.asarray(inputs, jnp.float32).swapaxes(0, 1), 0.0)  # (T, N, F)
        carry = initial_carry(cfg, n) if carry is None else carry
        drop = nn.Dropout(1.0 - cfg.keep_prob, deterministic=not train)
        new_carry = {}
        if cfg.use_interpretation_layer:
            layer = LSTMLayer(cfg.hidden_size, False, cfg.unroll, cfg.precision, cfg.recurrence,
                              cfg.matmul_dtype, name="interpretation_lstm")
            x, new_carry["interpretation"] = layer(drop(x), lengths, carry["interpretation"])
            self.sow("intermediates", "interpretation", x.swapaxes(0, 1))
            x = drop(x)
        heads = nn.vmap(
            GenreNet,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=(0, None, 0),
            out_axes=0,
            axis_size=cfg.num_styles,
        )(cfg, deterministic=not train, name="heads")
        # Each head gets its own copy of x: with a shared (unbatched) x, the gradient sums the
        # heads' input gradients, XLA folds that sum into the matmul, and XLA:CPU cannot run
        # the folded bf16 matmul ("Unsupported element type for DotThunk").
        xs = jnp.broadcast_to(x, (cfg.num_styles,) + x.shape)
        vel, new_carry["heads"] = heads(xs, lengths, carry["heads"])
        return jnp.where(mask, vel, 0.0).swapaxes(1, 2), new_carry  # (S, N, T, output_size)
