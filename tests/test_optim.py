"""stylenet_jax.optim: per-tensor clipping and which axes form one tensor."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

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
