"""stylenet_jax.optim: per-tensor clipping and which axes form one tensor."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from stylenet_jax import optim, train_steps
from stylenet_jax.config import ModelConfig


def test_clip_by_tensor_norm():
    tx = optim.clip_by_tensor_norm(10.0)
    big = jnp.array([30.0, 40.0])  # norm 50 -> scaled to 10
    small = jnp.array([3.0, 4.0])  # norm 5 -> unchanged
    # A stacked head matrix (S=2, F=2, 4H=2): each style's matrix is clipped on its own.
    w = jnp.stack([jnp.full((2, 2), 50.0), jnp.full((2, 2), 1.0)])  # norms 100 and 2
    grads = {"a": {"b": big}, "c": small, "heads": {"w_hh": w}}
    out, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(out["a"]["b"], [6.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(out["c"], small)
    np.testing.assert_allclose(out["heads"]["w_hh"][0], np.full((2, 2), 5.0), rtol=1e-6)
    np.testing.assert_allclose(out["heads"]["w_hh"][1], np.ones((2, 2)))
    # Global clipping would have scaled everything by the same factor.
    glob_out, _ = optax.clip_by_global_norm(10.0).update(grads, None)
    assert not np.allclose(glob_out["c"], small)


def test_tensor_ndim_for_model_leaves():
    cfg = ModelConfig(num_styles=2, hidden_size=4, num_layers=1)
    params = jax.eval_shape(lambda: train_steps.init_params(cfg, jax.random.PRNGKey(0)))
    dims = jax.tree_util.tree_map_with_path(optim.tensor_ndim, params)
    flat = {jax.tree_util.keystr(p): d for p, d in jax.tree_util.tree_leaves_with_path(dims)}
    assert all(d == (2 if any(k in p for k in ("w_ih", "w_hh", "kernel")) else 1)
               for p, d in flat.items()), flat


def test_constant_learning_rate_is_the_papers_adam_exactly():
    from stylenet_jax.config import OptimConfig

    config = OptimConfig(clip="none")
    assert optim.learning_rate(config) == 1e-3  # a number, not a schedule
    params = {"w": jnp.arange(6.0).reshape(2, 3)}
    grads = {"w": jnp.linspace(-1.0, 2.0, 6).reshape(2, 3)}
    ours, paper = optim.make_optimizer(config), optax.adam(1e-3)
    s1, s2 = ours.init(params), paper.init(params)
    for _ in range(3):
        u1, s1 = ours.update(grads, s1, params)
        u2, s2 = paper.update(grads, s2, params)
        np.testing.assert_array_equal(u1["w"], u2["w"])


def test_warmup_and_cosine_schedules_hit_their_stated_values():
    from stylenet_jax.config import OptimConfig

    warm = optim.learning_rate(OptimConfig(learning_rate=0.01, warmup_steps=10))
    assert [float(warm(s)) for s in (0, 5, 10, 1000)] == pytest.approx([0, 0.005, 0.01, 0.01])
    cosine = optim.learning_rate(OptimConfig(learning_rate=0.01, lr_schedule="cosine",
                                             warmup_steps=10, lr_decay_steps=110))
    assert float(cosine(10)) == pytest.approx(0.01)
    assert float(cosine(60)) == pytest.approx(0.01 * (0.01 + 0.99 * 0.5))  # half way down
    assert float(cosine(110)) == pytest.approx(0.0001)
    assert float(cosine(5000)) == pytest.approx(0.0001)
    with pytest.raises(ValueError, match="lr_decay_steps"):
        OptimConfig(lr_schedule="cosine", warmup_steps=10, lr_decay_steps=10)
    with pytest.raises(ValueError, match="lr_schedule"):
        OptimConfig(lr_schedule="linear")
