"""Tests of stylenet_jax.train_steps (and model.select_heads): one-head steps on tiny models."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import batching, dataset, input_pipeline, model, train_steps
from stylenet_jax.config import Config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("data")))


def test_select_and_where_heads():
    params = {"interpretation": {"w": jnp.ones((3,))},
              "heads": {"out": {"kernel": jnp.arange(3 * 2.0).reshape(3, 2)}}}
    one = model.select_heads(params, jnp.array([1]))
    np.testing.assert_array_equal(one["heads"]["out"]["kernel"], [[2.0, 3.0]])
    np.testing.assert_array_equal(one["interpretation"]["w"], params["interpretation"]["w"])
    new = jax.tree.map(lambda a: a + 100, params)
    mixed = train_steps.where_heads(jnp.array([False, True, False]), new, params)
    np.testing.assert_array_equal(mixed["heads"]["out"]["kernel"], [[0, 1], [102, 103], [4, 5]])
    np.testing.assert_array_equal(mixed["interpretation"]["w"], new["interpretation"]["w"])


def test_train_step_updates_only_own_head(data_dir):
    config = Config().replace(data_dir=data_dir, hidden_size=8, num_layers=1, window=16)
    cfg = dataclasses.replace(config.model, num_styles=2)
    state = train_steps.init_state(jax.random.PRNGKey(0), model_config=cfg, optim=config.optim)
    before = jax.device_get(state.params)
    songs = batching.window_songs(dataset.load_songs(data_dir, "train"), ["classical", "jazz"],
                                  16)
    batch = next(batching.epoch_batches(songs, songs_per_batch=2, windows_per_batch=8))
    assert int(batch.styles[0]) == 0
    _, on_device = next(input_pipeline.prefetch_to_device(iter([batch])))  # as train_epoch feeds it
    state, metrics, _ = train_steps.train_step(state, train_steps.zero_metrics(2), on_device,
                                               None, model_config=cfg, optim=config.optim)
    after = jax.device_get(state.params)
    for path, b in jax.tree_util.tree_leaves_with_path(before["heads"]):
        a = dict(jax.tree_util.tree_leaves_with_path(after["heads"]))[path]
        assert not np.array_equal(a[0], b[0]), path  # own head moved
        np.testing.assert_array_equal(a[1], b[1])  # the other did not
    shared = [k for k in before if k != "heads"]  # the interpretation layer
    assert shared and all(not np.array_equal(after[k]["w_hh"], before[k]["w_hh"]) for k in shared)
    m = jax.device_get(metrics)
    assert m["batches"].tolist() == [1.0, 0.0] and m["cells"][0] == batch.lengths.sum() * 88

