"""Tests for stylenet_jax.model (small sizes; CPU-fast); the LSTM maths: test_lstm.py."""

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reference_lstm import reference_lstm
from stylenet_jax.config import ModelConfig
from stylenet_jax.model import StyleNet, count_params, initial_carry, reset_carry

H = 8


def _cfg(**kw) -> ModelConfig:
    base = dict(num_styles=2, hidden_size=H, num_layers=2, keep_prob=0.8, precision="highest")
    return ModelConfig(**{**base, **kw})


def _notes(seed: int, n: int, t: int, f: int = 176) -> jnp.ndarray:
    return jax.random.bernoulli(jax.random.key(seed), 0.15, (n, t, f)).astype(jnp.float32)


@functools.lru_cache(maxsize=None)
def _jitted(cfg: ModelConfig, method: str, train: bool):
    """jit the whole init/apply: far faster on CPU than op-by-op eager dispatch."""
    return jax.jit(functools.partial(getattr(StyleNet(cfg), method), train=train))


def _init(cfg: ModelConfig, x, lengths, seed: int = 0):
    return _jitted(cfg, "init", False)(jax.random.key(seed), x, lengths)


def _apply(cfg, variables, x, lengths, train: bool = False, **kw):
    return _jitted(cfg, "apply", train)(variables, x, lengths, **kw)


_ref_lstm = jax.jit(reference_lstm, static_argnames=("reverse", "precision"))


def _close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


# ----------------------------------------------------------------------------- config / shapes


def test_config_roundtrip_and_validation():
    cfg = _cfg(keep_prob=0.5, unroll=2)
    assert ModelConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError):
        ModelConfig(keep_prob=0.0)


@pytest.mark.parametrize(
    "bidirectional,interp,layers,styles",
    [(True, True, 1, 1), (False, True, 3, 3), (True, False, 3, 1), (False, False, 1, 3)],
)
def test_output_shapes(bidirectional, interp, layers, styles):
    cfg = _cfg(bidirectional=bidirectional, use_interpretation_layer=interp, num_layers=layers,
               num_styles=styles)
    x, lengths = _notes(0, 3, 10), jnp.array([10, 4, 0])
    variables = _init(cfg, x, lengths)
    y, carry = _apply(cfg, variables, x, lengths)
    assert y.shape == (styles, 3, 10, 88) and y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y))) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert jax.tree.map(jnp.shape, carry) == jax.tree.map(jnp.shape, initial_carry(cfg, 3))
    assert ("interpretation_lstm" in variables["params"]) == interp
    y8, _ = _apply(cfg, variables, x.astype(jnp.uint8), lengths)  # uint8 input is cast
    _close(y8, y, 0)


def test_default_config_shape_and_param_count():
    cfg = ModelConfig()
    x, lengths = _notes(1, 1, 3), jnp.array([3])
    variables = _init(cfg, x, lengths)
    y, _ = _apply(cfg, variables, x, lengths)
    assert y.shape == (2, 1, 3, 88)
    h = 176

    def lstm(f):  # w_ih + w_hh + b per direction
        return 4 * h * (f + h + 1)

    head = 2 * lstm(176) + 2 * 2 * lstm(2 * h) + 2 * h * 88 + 88
    assert count_params(variables["params"]) == lstm(176) + 2 * head


# ----------------------------------------------------------------------------- padding


def test_padding_invariance():
    cfg = _cfg()
    t, lengths = 20, jnp.array([20, 7, 0, 13])
    x = _notes(2, 4, t)
    real = (jnp.arange(t) < lengths[:, None])[..., None]  # (N, T, 1)
    clean = jnp.where(real, x, 0.0)
    garbage = jnp.where(real, x, 10.0 * jax.random.normal(jax.random.key(3), x.shape))
    variables = _init(cfg, clean, lengths)
    y, carry = _apply(cfg, variables, clean, lengths)
    y_g, carry_g = _apply(cfg, variables, garbage, lengths)
    assert bool(jnp.all(jnp.isfinite(y_g)))
    _close(y_g, y, 1e-6)
    jax.tree.map(lambda a, b: _close(a, b, 1e-6), carry_g, carry)
    assert float(jnp.abs(jnp.where(real[None], 0.0, y)).max()) == 0.0  # padded steps are 0
    for i, n in enumerate(lengths.tolist()):
        if n == 0:
            continue
        y_i, carry_i = _apply(cfg, variables, x[i : i + 1, :n], lengths[i : i + 1])
        _close(y_i[:, 0], y[:, i, :n], 1e-6)
        _close(carry_i["heads"].h[:, :, 0], carry["heads"].h[:, :, i], 1e-6)


# ----------------------------------------------------------------------------- vmapped heads


def test_vmapped_heads_equal_single_heads():
    cfg = _cfg(num_styles=3)
    x, lengths = _notes(4, 3, 12), jnp.array([12, 9, 1])
    variables = _init(cfg, x, lengths)
    y, _ = _apply(cfg, variables, x, lengths)
    one = dataclasses.replace(cfg, num_styles=1)
    for s in range(3):
        heads = jax.tree.map(lambda a: a[s : s + 1], variables["params"]["heads"])
        params = dict(variables["params"], heads=heads)
        y_s, _ = _apply(one, {"params": params}, x, lengths)
        _close(y_s[0], y[s], 1e-6)
    assert float(jnp.abs(y[0] - y[1]).max()) > 1e-3  # heads are initialised independently


# ----------------------------------------------------------------------------- reference maths


def _reference_model(cfg: ModelConfig, params, x, lengths):
    """StyleNet eval forward pass from reference_lstm, one head and one direction at a time."""

    def layer(p, inp, reverse_too):
        def run(d, reverse=False):
            return _ref_lstm(p["w_ih"][d], p["w_hh"][d], p["b"][d], inp, lengths,
                             reverse=reverse, precision="highest")[0]

        out = [run(0)]
        if reverse_too:
            out.append(run(1, reverse=True))
        return jnp.concatenate(out, -1)

    if cfg.use_interpretation_layer:
        x = layer(params["interpretation_lstm"], x, False)
    ys = []
    for s in range(cfg.num_styles):
        head = jax.tree.map(lambda a: a[s], params["heads"])
        h = x
        for l in range(cfg.num_layers):
            h = layer(head[f"layer_{l}"], h, cfg.bidirectional)
        logits = jnp.dot(h, head["out"]["kernel"], precision="highest") + head["out"]["bias"]
        ys.append(jax.nn.sigmoid(logits))
    mask = (jnp.arange(x.shape[1]) < lengths[:, None])[..., None]
    return jnp.where(mask, jnp.stack(ys), 0.0)


def test_model_equals_reference():
    cfg = _cfg(num_styles=2, num_layers=2, unroll=2)
    x, lengths = _notes(9, 3, 13), jnp.array([13, 5, 0])
    variables = _init(cfg, x, lengths)
    y, _ = _apply(cfg, variables, x, lengths)
    ref = jax.jit(functools.partial(_reference_model, cfg))(variables["params"], x, lengths)
    _close(y, ref, 1e-5)


# ----------------------------------------------------------------------------- dropout


def test_dropout():
    cfg = _cfg(num_layers=1)
    x, lengths = _notes(10, 2, 10), jnp.array([10, 6])
    variables = _init(cfg, x, lengths)
    k1, k2 = jax.random.key(11), jax.random.key(12)
    y1, _ = _apply(cfg, variables, x, lengths, train=True, rngs={"dropout": k1})
    y1b, _ = _apply(cfg, variables, x, lengths, train=True, rngs={"dropout": k1})
    y2, _ = _apply(cfg, variables, x, lengths, train=True, rngs={"dropout": k2})
    ev, _ = _apply(cfg, variables, x, lengths)  # no dropout rng needed
    ev2, _ = _apply(cfg, variables, x, lengths)
    _close(y1b, y1, 0)
    _close(ev2, ev, 0)
    assert float(jnp.abs(y1 - y2).max()) > 1e-4
    assert float(jnp.abs(y1 - ev).max()) > 1e-4
    assert float(jnp.abs(y1[0] - y1[1]).max()) > 0  # heads get different masks
    no_drop = dataclasses.replace(cfg, keep_prob=1.0)
    y_nd, _ = _apply(no_drop, variables, x, lengths, train=True, rngs={"dropout": k1})
    _close(y_nd, ev, 0)


# ----------------------------------------------------------------------------- carry


def test_carry_across_windows_forward_only():
    cfg = _cfg(bidirectional=False)
    t = 8
    x = _notes(13, 3, 2 * t)
    lengths = jnp.array([2 * t, 2 * t - 3, t])  # row 2 ends exactly at the window boundary
    variables = _init(cfg, x, lengths)
    y, carry = _apply(cfg, variables, x, lengths)
    l1, l2 = jnp.minimum(lengths, t), jnp.clip(lengths - t, 0, t)
    y_a, c_a = _apply(cfg, variables, x[:, :t], l1)
    y_b, c_b = _apply(cfg, variables, x[:, t:], l2, carry=c_a)
    _close(jnp.concatenate([y_a, y_b], axis=2), y, 1e-6)
    jax.tree.map(lambda a, b: _close(a, b, 1e-6), c_b, carry)
    # carry=None equals an explicit zero carry
    y_z, _ = _apply(cfg, variables, x, lengths, carry=initial_carry(cfg, 3))
    _close(y_z, y, 0)


def test_reset_carry():
    cfg = _cfg()
    carry = jax.tree.map(lambda a: a + 1.0, initial_carry(cfg, 3))
    out = reset_carry(carry, jnp.array([True, False, True]))
    assert float(jnp.abs(out["interpretation"].h[jnp.array([0, 2])]).max()) == 0.0
    assert float(jnp.abs(out["heads"].c[:, :, jnp.array([0, 2])]).max()) == 0.0
    assert bool(jnp.all(out["heads"].h[:, :, 1] == 1.0))
    assert bool(jnp.all(out["interpretation"].c[1] == 1.0))


# ----------------------------------------------------------------------------- jit / grads


def test_jit_compiles_once_and_grads_finite():
    cfg = _cfg(num_layers=1)
    t, lengths = 12, jnp.array([12, 5, 0])
    x = _notes(14, 3, t)
    real = (jnp.arange(t) < lengths[:, None])[..., None]
    target = jax.random.uniform(jax.random.key(15), (3, t, 88))
    variables = _init(cfg, x, lengths)
    traces = []

    @jax.jit
    def loss_and_grad(params, x, lengths, key):
        traces.append(1)

        def loss(params):
            y, _ = StyleNet(cfg).apply({"params": params}, x, lengths, train=True,
                                       rngs={"dropout": key})
            return jnp.sum(jnp.where(real, (y - target) ** 2, 0.0)) / jnp.sum(real)

        return jax.value_and_grad(loss)(params)

    l1, g1 = loss_and_grad(variables["params"], x, lengths, jax.random.key(16))
    garbage = jnp.where(real, x, jnp.nan)  # even NaN padding must not leak into loss or grads
    l2, g2 = loss_and_grad(variables["params"], garbage, lengths, jax.random.key(16))
    assert len(traces) == 1
    assert bool(jnp.isfinite(l1))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(g1))
    _close(l2, l1, 1e-6)
    jax.tree.map(lambda a, b: _close(a, b, 1e-6), g2, g1)
    assert float(sum(jnp.abs(g).sum() for g in jax.tree.leaves(g1))) > 0


@pytest.mark.slow  # 10-13 s: the default suite keeps a margin under 10 minutes
def test_bfloat16_matmuls_round_inputs_only():
    """matmul_dtype='bfloat16' stays close to float32 (inputs rounded, fp32 accumulation), is
    not identical to it, keeps float32 outputs and parameters, and both backward passes agree."""
    cfg32 = _cfg(num_layers=2, keep_prob=1.0)
    cfg16 = dataclasses.replace(cfg32, matmul_dtype="bfloat16")
    x, lengths = _notes(21, 3, 12), jnp.array([12, 7, 0])
    variables = _init(cfg32, x, lengths)
    assert jax.tree.map(lambda a: a.dtype, variables) == jax.tree.map(
        lambda a: a.dtype, _init(cfg16, x, lengths))
    y32, _ = _apply(cfg32, variables, x, lengths)
    y16, _ = _apply(cfg16, variables, x, lengths)
    assert y16.dtype == jnp.float32
    diff = float(jnp.abs(y16 - y32).max())
    assert 0 < diff < 1e-2, diff
    assert float(jnp.abs(y16[:, 2]).max()) == 0.0  # padding still 0

    def grads(cfg):
        def loss(p):
            y, _ = StyleNet(cfg).apply({"params": p}, x, lengths, train=False)
            return jnp.sum(y ** 2)
        return jax.jit(jax.grad(loss))(variables["params"])

    custom = grads(cfg16)
    auto = grads(dataclasses.replace(cfg16, recurrence="autodiff"))
    exact = grads(cfg32)
    for a, b, c in zip(jax.tree.leaves(custom), jax.tree.leaves(auto), jax.tree.leaves(exact)):
        scale = float(jnp.abs(c).max()) + 1e-6
        assert float(jnp.abs(a - b).max()) / scale < 2e-2
        assert float(jnp.abs(a - c).max()) / scale < 5e-2


def _dot_operand_dtypes(jaxpr) -> list[tuple[str, str]]:
    """(lhs dtype, rhs dtype) of every dot_general in a closed jaxpr, nested ones included."""
    found = []

    def walk(j):
        for eqn in j.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(tuple(str(v.aval.dtype) for v in eqn.invars))
            for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else []:
                walk(sub)
            for p in eqn.params.values():
                for q in (p if isinstance(p, (list, tuple)) else [p]):
                    if hasattr(q, "jaxpr") and hasattr(q.jaxpr, "eqns"):
                        walk(q.jaxpr)
                    elif hasattr(q, "eqns"):
                        walk(q)

    walk(jaxpr.jaxpr)
    return found


def test_bfloat16_training_step_runs_every_matmul_in_bfloat16():
    """Forward AND backward: no float32 x float32 matmul is left in the bf16 gradient."""
    cfg = _cfg(num_layers=1, matmul_dtype="bfloat16")
    x, lengths = _notes(22, 2, 6), jnp.array([6, 3])
    params = _init(cfg, x, lengths)["params"]

    def loss(p):
        y, _ = StyleNet(cfg).apply({"params": p}, x, lengths, train=False)
        return jnp.sum(y ** 2)

    dtypes = _dot_operand_dtypes(jax.make_jaxpr(jax.grad(loss))(params))
    assert len(dtypes) >= 10, dtypes  # projections, recurrences, output layer, and their grads
    assert all(d == ("bfloat16", "bfloat16") for d in dtypes), dtypes
    cfg32 = dataclasses.replace(cfg, matmul_dtype="float32")
    fp32 = _dot_operand_dtypes(jax.make_jaxpr(jax.grad(
        lambda p: jnp.sum(StyleNet(cfg32).apply({"params": p}, x, lengths, train=False)[0] ** 2)))(
        params))
    assert len(fp32) >= 10 and all(d == ("float32", "float32") for d in fp32)


def test_velocity_scale_120_is_the_papers_output_times_120_over_127():
    x, lengths = _notes(5, 3, 12), jnp.array([12, 9, 4])
    paper, seed_code = _cfg(), _cfg(velocity_scale=120)
    variables = _init(paper, x, lengths)  # the same parameters serve both
    y, _ = _apply(paper, variables, x, lengths)
    y120, _ = _apply(seed_code, variables, x, lengths)
    _close(y120, y * (120 / 127), 1e-7)
    assert float(y120.max()) <= 120 / 127
    assert float(jnp.abs(y - _apply(_cfg(velocity_scale=127), variables, x, lengths)[0]).max()
                 ) == 0.0  # the default leaves the paper's maths untouched
    with pytest.raises(ValueError, match="velocity_scale"):
        _cfg(velocity_scale=128)
