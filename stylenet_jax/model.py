"""StyleNet (Malik & Ek, 2017) as Flax modules, its head selection and its one forward pass.

A shared unidirectional LSTM "interpretation layer" reads quantised notes (N, T, 176); one
"GenreNet" head per style (stacked bidirectional LSTMs + a linear layer to 88 + sigmoid)
predicts every note's velocity in [0, 1]. The S heads are one parameter tree with a leading
style axis, applied with ``nn.vmap``, so any number of styles is one compiled computation.
The LSTM maths (cell, fused two-direction scan, backward pass, bf16 matmul) live in ``lstm``;
the hyper-parameters in ``config.ModelConfig``. Forget-gate biases start at 1.0.

Every deterministic forward of the project (stylize, snapshots, precision, the benchmark, the
evaluation) is ``predict``; every head selection (training steps, stylize blends) is
``select_heads``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from stylenet_jax.config import ModelConfig, num_heads
from stylenet_jax.lstm import LSTMState, dense_dot_general, fused_lstm
from stylenet_jax.note_context import context_channels
from stylenet_jax.note_readout import NoteReadout, cell_features
from stylenet_jax.tempo import DEFAULT_SECONDS_PER_BEAT, TEMPO_LIMIT

Array = jax.Array


def initial_carry(config: ModelConfig, n: int) -> dict[str, LSTMState]:
    """Zero carry for a batch of n rows (float32).

    ``{'interpretation': LSTMState((n, H), (n, H))`` (only with the interpretation layer),
    ``'heads': LSTMState((S, L, n, H), (S, L, n, H))}`` (forward direction of each head layer;
    S = 1 with ``shared_heads``).
    """
    s, l, h = num_heads(config), config.num_layers, config.hidden_size
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
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -limit,
                                                                    limit)


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
    def __call__(self, x: Array, lengths: Array,
                 initial: LSTMState | None = None) -> tuple[Array, LSTMState]:
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

    Time-major (T, N, F) -> velocities (T, N, output_size) in [0, velocity_scale / 127]
    (velocity / 127 units; the paper: [0, 1]); carry: forward states (L, N, H).
    """

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array, lengths: Array, carry: LSTMState,
                 cells: Array | None = None, prior: Array | None = None
                 ) -> tuple[Array, LSTMState]:
        """cells: (T, N, 88, C) ``note_readout.cell_features`` (time-major), needed with
        ``config.note_readout``; prior: (T, N, 88) float32 the tree baseline's velocity / 127
        of this head's style (0 where nothing sounds), needed with ``config.tree_prior``:
        the head's LSTM reads it beside x, its note readout as one more cell feature, and
        ``tree_gain`` (starting at 1) times its logit is added to the head's logits, whose
        linear layer then starts at zero (the untrained hybrid plays the tree)."""
        cfg = self.config
        if cfg.tree_prior:
            x = jnp.concatenate([x, prior], axis=-1)
            if cells is not None:
                cells = jnp.concatenate([cells, prior[..., None]], axis=-1)
        drop = nn.Dropout(1.0 - cfg.keep_prob, deterministic=self.deterministic)
        states = []
        for l in range(cfg.num_layers):
            layer = LSTMLayer(cfg.hidden_size, cfg.bidirectional, cfg.unroll, cfg.precision,
                              cfg.recurrence, cfg.matmul_dtype, name=f"layer_{l}")
            x, state = layer(drop(x), lengths, LSTMState(carry.h[l], carry.c[l]))
            x = drop(x)
            states.append(state)
        # A hybrid's own logits start at 0, so that an untrained hybrid plays the tree exactly
        # and training moves it away only as far as that helps.
        start = {"kernel_init": nn.initializers.zeros, "bias_init": nn.initializers.zeros
                 } if cfg.tree_prior else {}
        y = nn.Dense(cfg.output_size, precision=cfg.precision,
                     dot_general=dense_dot_general(cfg.matmul_dtype), name="out", **start)(x)
        if cfg.note_readout:
            y = y + NoteReadout(cfg.note_readout, cfg.precision, cfg.matmul_dtype,
                                name="note_readout")(x, cells)
        if cfg.tree_prior:
            gain = self.param("tree_gain", nn.initializers.ones, ())
            y = y + gain * prior_logit(prior)
        velocity = jax.nn.sigmoid(y)
        if cfg.velocity_scale != 127:  # the seed code's velocity / 120, in velocity / 127 units
            velocity = velocity * (cfg.velocity_scale / 127)
        return velocity, LSTMState(*(jnp.stack(s) for s in zip(*states)))


class StyleNet(nn.Module):
    """StyleNet: shared interpretation LSTM + S vmapped GenreNet heads.

    Params: ``interpretation_lstm`` {w_ih, w_hh, b} (if used) and ``heads`` {layer_0.., out}, every
    head leaf with a leading style axis S.
    """

    config: ModelConfig

    @nn.compact
    def __call__(
        self, inputs: Array, lengths: Array, *, train: bool,
        carry: dict[str, LSTMState] | None = None, seconds_per_beat: Array | None = None,
        priors: Array | None = None,
    ) -> tuple[Array, dict[str, LSTMState]]:
        """Predict velocities for every style.

        Args:
          inputs: (N, T, input_size) float32 or uint8 (cast to float32). With
            ``config.note_context`` the first layer reads them with ``note_context``'s 269
            channels appended.
          lengths: (N,) int32, real steps per row (0..T); the rest is padding and ignored.
          train: apply dropout (needs ``rngs={'dropout': key}``); False is deterministic.
          carry: forward LSTM states from the previous window (see ``initial_carry``);
            None = zeros.
          seconds_per_beat: (N,) float32, each row's piece's mean tempo (``tempo``), read
            only with ``config.tempo_input`` (one more input channel, ``tempo_channel``);
            None = MIDI's default, 120 beats per minute.
          priors: (H, N, T, 88) float32, per head (H = ``num_heads(config)``) the tree
            baseline's velocity / 127 of the head's style on every active cell
            (``tree_prior``), or (N, T, 88) for every head alike; needed with, and read only
            with, ``config.tree_prior``.
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
        cells = None
        if cfg.note_readout:  # (T, N, 88, C) from the masked notes, shared by every head
            cells = jnp.where(mask[..., None], cell_features(x.swapaxes(0, 1)).swapaxes(0, 1),
                              0.0)
        if cfg.note_context:  # (T, N, F + 269): computed from the masked notes
            context = context_channels(x.swapaxes(0, 1)).swapaxes(0, 1)
            x = jnp.concatenate([x, jnp.where(mask, context, 0.0)], axis=-1)
        if cfg.tempo_input:  # (T, N, F + 1): the row's tempo on every real step
            spb = (jnp.full((n,), DEFAULT_SECONDS_PER_BEAT) if seconds_per_beat is None
                   else jnp.asarray(seconds_per_beat, jnp.float32))
            tempo = jnp.broadcast_to(tempo_channel(spb)[None, :, None], (t, n, 1))
            x = jnp.concatenate([x, jnp.where(mask, tempo, 0.0)], axis=-1)
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
            in_axes=(0, None, 0, None, 0),
            out_axes=0,
            axis_size=num_heads(cfg),
        )(cfg, deterministic=not train, name="heads")
        # Each head gets its own copy of x: with a shared (unbatched) x, the gradient sums the
        # heads' input gradients, XLA folds that sum into the matmul, and XLA:CPU cannot run
        # the folded bf16 matmul ("Unsupported element type for DotThunk").
        xs = jnp.broadcast_to(x, (num_heads(cfg),) + x.shape)
        head_priors = None
        if cfg.tree_prior:
            if priors is None:
                raise ValueError("a model with tree_prior needs priors (the tree baseline's "
                                 "velocities)")
            priors = jnp.asarray(priors, jnp.float32)
            priors = jnp.broadcast_to(priors, (num_heads(cfg),) + priors.shape[-3:])
            head_priors = jnp.where(mask, priors.swapaxes(1, 2), 0.0)  # (H, T, N, 88)
        vel, new_carry["heads"] = heads(xs, lengths, carry["heads"], cells, head_priors)
        vel = jnp.where(mask, vel, 0.0).swapaxes(1, 2)  # (heads, N, T, output_size)
        # one shared head plays every style: (S, N, T, output_size) like separate heads
        return jnp.broadcast_to(vel, (cfg.num_styles,) + vel.shape[1:]), new_carry


def prior_logit(prior: Array) -> Array:
    """The logit of a prior velocity / 127 (any shape, float32), the velocity clipped to
    0.5..126.5 first so that it is finite; 0 where ``prior`` is 0 (nothing sounds)."""
    clipped = jnp.clip(prior, 0.5 / 127, 126.5 / 127)
    return jnp.where(prior > 0, jnp.log(clipped) - jnp.log1p(-clipped), 0.0)


def tempo_channel(seconds_per_beat: Array) -> Array:
    """The tempo input channel of ``tempo_input``: ``clip(log2(spb / 0.5), -3, 3)`` float32,
    0 at 120 beats per minute, -1 at 240, +1 at 60; a non-positive or non-finite tempo counts
    as 120. seconds_per_beat: any shape."""
    spb = jnp.asarray(seconds_per_beat, jnp.float32)
    spb = jnp.where(jnp.isfinite(spb) & (spb > 0), spb, DEFAULT_SECONDS_PER_BEAT)
    return jnp.clip(jnp.log2(spb / DEFAULT_SECONDS_PER_BEAT), -TEMPO_LIMIT, TEMPO_LIMIT)


def select_heads(params: Any, heads: Array) -> Any:
    """Params of a model of the heads ``heads`` (K,) int32 only, in that order: every
    ``heads`` leaf (S, ...) -> (K, ...); other leaves unchanged. A shared head (leaf (1, ...),
    ``shared_heads``) is left as it is: it plays every style. Traceable (the training steps
    pass a traced style) and differentiable."""
    heads = jnp.asarray(heads, jnp.int32)
    return jax.tree_util.tree_map_with_path(  # a shared head (leading axis 1) serves them all
        lambda p, a: jnp.take(a, heads, axis=0) if is_head_param(p) and a.shape[0] > 1 else a,
        params)


def head_config(config: ModelConfig, num_heads: int = 1) -> ModelConfig:
    """The config of a model of ``num_heads`` selected heads (see ``select_heads``)."""
    return dataclasses.replace(config, num_styles=num_heads)


@functools.partial(jax.jit, static_argnames=("config", "with_interpretation"))
def predict(params: Any, inputs: Array, lengths: Array, *, config: ModelConfig,
            with_interpretation: bool = False, seconds_per_beat: Array | None = None,
            priors: Array | None = None) -> Any:
    """Deterministic velocities of every head in ``params``: (S, N, T, 88) float32 in [0, 1]
    (0 at padded steps) for inputs (N, T, 176) uint8 or float32 and lengths (N,) int32;
    ``config.num_styles`` must equal the heads in ``params``. With ``with_interpretation``,
    returns ``(velocities, interpretation)``: the interpretation layer's outputs (N, T, H), or
    None without that layer. ``seconds_per_beat``: (N,) float32 each row's mean tempo, read
    with ``config.tempo_input`` (None: 120 beats per minute). ``priors``: (S, N, T, 88)
    float32 per head the tree baseline's velocity / 127, read with ``config.tree_prior``
    (``StyleNet``). Compiled once per config and input shape."""
    (vel, _), state = StyleNet(config).apply({"params": params}, inputs, lengths, train=False,
                                             seconds_per_beat=seconds_per_beat, priors=priors,
                                             mutable=["intermediates"])
    if not with_interpretation:
        return vel
    inter = state.get("intermediates", {}).get("interpretation")
    return vel, (None if inter is None else inter[0])


def dummy_priors(config: ModelConfig) -> Array | None:
    """Zero priors (1, 1, 88) float32 for initialising a ``tree_prior`` model; else None."""
    return jnp.zeros((1, 1, config.output_size), jnp.float32) if config.tree_prior else None


def expected_param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """{'/'-joined parameter path: shape} of ``StyleNet(config)``, from ``jax.eval_shape`` of
    its init (nothing is computed or allocated)."""
    # The speed-only fields change no parameter; these values trace fastest (0.1 s, not 0.3).
    config = dataclasses.replace(config, unroll=1, recurrence="autodiff")

    def init():
        return StyleNet(config).init(jax.random.key(0), jnp.zeros((1, 1, config.input_size)),
                                     jnp.ones((1,), jnp.int32), train=False,
                                     priors=dummy_priors(config))["params"]

    leaves, _ = jax.tree_util.tree_flatten_with_path(jax.eval_shape(init))
    return {"/".join(str(getattr(k, "key", k)) for k in p): tuple(v.shape) for p, v in leaves}


def param_problem(params: Any, config: ModelConfig) -> str | None:
    """Why ``params`` (a nested dict of arrays, e.g. a loaded export) do not fit
    ``StyleNet(config)`` (one line), or None if they do."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    flat = {"/".join(str(getattr(k, "key", k)) for k in p): v for p, v in leaves}
    if config.num_layers > len(flat):  # every layer has parameters: bound before tracing
        return f"{len(flat)} parameters cannot make {config.num_layers} layers"
    try:
        expected = expected_param_shapes(config)
    except Exception as e:  # noqa: BLE001 - a config of odd values fails in many ways
        first = (str(e).splitlines() or [""])[0][:200]
        return f"its model config does not build a model ({type(e).__name__}: {first})"
    missing = sorted(set(expected) - set(flat))
    extra = sorted(set(flat) - set(expected))
    wrong = [f"{k} {tuple(flat[k].shape)} (need {expected[k]})" for k in sorted(expected)
             if k in flat and tuple(flat[k].shape) != expected[k]]
    for what, names in (("missing parameters", missing), ("unexpected parameters", extra),
                        ("parameters of the wrong shape", wrong)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            return f"{what} for its model config: {', '.join(names[:3])}{more}"
    return None
