"""Tests of stylenet_jax.train_steps (and model.select_heads): one-head steps on tiny models."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import (batching, dataset, encoding, input_pipeline, loss, model,
                          train_steps)
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



def _three_style_setup(data_dir, **model_kw):
    config = Config().replace(data_dir=data_dir, hidden_size=8, num_layers=1, window=16,
                              keep_prob=1.0, **model_kw)
    cfg = dataclasses.replace(config.model, num_styles=3)
    state = train_steps.init_state(jax.random.PRNGKey(1), model_config=cfg, optim=config.optim)
    songs = batching.window_songs(dataset.load_songs(data_dir, "train"), ["classical", "jazz"],
                                  16)
    return config, cfg, state, songs


def _step(state, batch, cfg, optim, mixed):
    state = jax.tree.map(jnp.array, state)  # a fresh copy: the step donates its state
    return train_steps.train_step(state, train_steps.zero_metrics(cfg.num_styles),
                                  jax.tree.map(jnp.asarray, batch), None, model_config=cfg,
                                  optim=optim, mixed_styles=mixed)


def test_mixed_step_of_one_style_is_the_papers_step(data_dir):
    config, cfg, state, songs = _three_style_setup(data_dir)
    batch = next(batching.epoch_batches(songs, songs_per_batch=2, windows_per_batch=8))
    paper, paper_metrics, _ = _step(state, batch, cfg, config.optim, False)
    mixed, mixed_metrics, _ = _step(state, batch, cfg, config.optim, True)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 jax.device_get(mixed.params), jax.device_get(paper.params))
    for name in ("se", "cells", "steps", "batches"):
        np.testing.assert_allclose(mixed_metrics[name], paper_metrics[name], rtol=1e-5)


def test_mixed_batches_train_each_row_through_its_own_head(data_dir):
    config, cfg, state, songs = _three_style_setup(data_dir)
    batches = list(batching.epoch_batches(songs, layout="mixed", songs_per_batch=4,
                                          windows_per_batch=8, rng=np.random.default_rng(0)))
    batch = next(b for b in batches if len(set(b.styles[b.lengths > 0].tolist())) == 2)
    new, metrics, _ = _step(state, batch, cfg, config.optim, True)
    before, after = jax.device_get(state.params), jax.device_get(new.params)
    for path, b in jax.tree_util.tree_leaves_with_path(before["heads"]):
        a = dict(jax.tree_util.tree_leaves_with_path(after["heads"]))[path]
        assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1]), path
        np.testing.assert_array_equal(a[2], b[2])  # no row of style 2: untouched
    # the loss is each row against its own head: per style, the squared errors of the
    # one-head forward of that style's rows
    m = jax.device_get(metrics)
    velocities = model.predict(state.params, batch.inputs, batch.lengths, config=cfg)
    for style in (0, 1):
        rows = (batch.styles == style) & (batch.lengths > 0)
        real = np.arange(16)[None, :, None] < batch.lengths[rows][:, None, None]
        se = ((np.asarray(velocities[style])[rows] - batch.targets[rows]) ** 2 * real).sum()
        assert m["se"][style] == pytest.approx(se, rel=1e-4)
        assert m["batches"][style] == 1.0
    assert m["batches"][2] == 0.0


def test_mixed_layout_holds_every_window_once_with_its_own_style(data_dir):
    _, _, _, songs = _three_style_setup(data_dir)
    rng = np.random.default_rng(3)
    batches = list(batching.epoch_batches(songs, layout="mixed", songs_per_batch=4,
                                          windows_per_batch=8, rng=rng))
    assert len(batches) == batching.count_batches(songs, "mixed", 4, 8,
                                                  np.random.default_rng(3))
    assert all(b.inputs.shape == (8, 16, 176) for b in batches)
    assert any(len(set(b.styles[b.lengths > 0].tolist())) > 1 for b in batches)
    got = sorted((int(s), int(n)) for b in batches for s, n in zip(b.styles, b.lengths) if n)
    want = sorted((w.style, int(n)) for w in songs for n in w.lengths if n)
    assert got == want
    with pytest.raises(ValueError, match="mixed_styles"):
        Config().replace(mixed_styles=True, carry_state=True)


def test_shared_heads_one_set_of_weights_plays_and_learns_every_style(data_dir):
    config, cfg, state, songs = _three_style_setup(data_dir, shared_heads=True)
    for path, leaf in jax.tree_util.tree_leaves_with_path(state.params["heads"]):
        assert leaf.shape[0] == 1, path  # one head's parameters
    assert model.param_problem(state.params, cfg) is None
    batch = next(batching.epoch_batches(songs, songs_per_batch=2, windows_per_batch=8))
    velocities = model.predict(state.params, batch.inputs, batch.lengths, config=cfg)
    assert velocities.shape[0] == 3
    np.testing.assert_array_equal(velocities[0], velocities[2])  # every style the same
    jazz = batch._replace(styles=np.ones_like(batch.styles))
    for mixed in (False, True):
        new, _, _ = _step(state, jazz, cfg, config.optim, mixed)
        moved = jax.tree.map(lambda a, b: not np.array_equal(a, b),
                             jax.device_get(new.params["heads"]),
                             jax.device_get(state.params["heads"]))
        assert all(jax.tree.leaves(moved))  # a jazz batch trains the one shared head
    separate = dataclasses.replace(cfg, shared_heads=False)
    assert "heads" in (model.param_problem(state.params, separate) or "")


def test_a_shared_head_export_performs_every_style_and_blend_alike(data_dir, tmp_path):
    from stylenet_jax import checkpoints, performer

    _, cfg, state, _ = _three_style_setup(data_dir, shared_heads=True)
    path = checkpoints.export_inference(str(tmp_path / "shared.npz"), state.params, cfg,
                                        ["classical", "jazz", "pop"])
    stylizer = performer.Stylizer(path)
    notes = (np.random.default_rng(0).random((300, 176)) < 0.05).astype(np.uint8)
    alone = stylizer.predict(notes, {"classical": 1.0})
    assert alone.shape == (300, 88) and alone.max() > 0
    np.testing.assert_array_equal(stylizer.predict(notes, {"pop": 1.0}), alone)
    np.testing.assert_allclose(stylizer.predict(notes, {"jazz": 0.5, "pop": 0.5}), alone,
                               rtol=1e-6)


def _term_off_is_the_papers_step(data_dir, weight_field):
    """Asserts that a loss term's weight (an ``OptimConfig`` field) at 0 leaves one step the
    paper's, bit for bit. Returns (model config, state, batch, the optimizer settings at a
    learning rate of 3e-3 without the term, and the state after a step with those)."""
    config, cfg, state, songs = _three_style_setup(data_dir, loss="onset")
    batch = next(batching.epoch_batches(songs, songs_per_batch=2, windows_per_batch=8))
    paper, _, _ = _step(state, batch, cfg, config.optim, False)
    off, _, _ = _step(state, batch, cfg,
                      dataclasses.replace(config.optim, **{weight_field: 0.0}), False)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(off.params),
                 jax.device_get(paper.params))
    plain = dataclasses.replace(config.optim, learning_rate=3e-3)
    same_lr, _, _ = _step(state, batch, cfg, plain, False)
    return cfg, state, batch, plain, same_lr


@pytest.mark.slow  # compiles four train steps (21 s on 2 cores); CI runs it
def test_spread_weight_zero_is_the_papers_step_and_positive_widens_the_spread(data_dir):
    cfg, state, batch, plain, same_lr = _term_off_is_the_papers_step(
        data_dir, "spread_weight")
    widened, metrics, _ = _step(state, batch, cfg,
                                dataclasses.replace(plain, spread_weight=50.0), False)
    onsets = np.asarray(encoding.onset_channels(np.asarray(batch.inputs))) > 0

    def sd(params):
        vel = model.predict(params, jnp.asarray(batch.inputs), jnp.asarray(batch.lengths),
                            config=cfg)
        return float(np.asarray(vel)[int(batch.styles[0])][onsets].std())

    assert sd(widened.params) > sd(same_lr.params) and sd(widened.params) > sd(state.params)
    assert np.isfinite(jax.device_get(metrics)["se"]).all()

    # --spread_of=steps: the term on each step's mean over its onsets widens those means.
    by_steps, _, _ = _step(state, batch, cfg, dataclasses.replace(
        plain, spread_weight=50.0, spread_of="steps"), False)
    counts = onsets.sum(-1)

    def step_sd(params):
        vel = np.asarray(model.predict(params, jnp.asarray(batch.inputs),
                                       jnp.asarray(batch.lengths), config=cfg))
        means = (vel[int(batch.styles[0])] * onsets).sum(-1) / np.maximum(counts, 1)
        return float(means[counts > 0].std())

    assert step_sd(by_steps.params) > step_sd(same_lr.params)
    assert not np.allclose(step_sd(by_steps.params), step_sd(widened.params))


def test_level_weight_zero_is_the_papers_step_and_positive_follows_the_bar_levels(data_dir):
    """--level_weight: 0 leaves the step the paper's; a large weight moves the parameters so
    that the bars' mean onset velocities come closer to the pianist's than the same step
    without it brings them."""
    cfg, state, batch, plain, same_lr = _term_off_is_the_papers_step(
        data_dir, "level_weight")
    levelled, metrics, _ = _step(state, batch, cfg,
                                 dataclasses.replace(plain, level_weight=50.0), False)
    inputs, lengths = jnp.asarray(batch.inputs), jnp.asarray(batch.lengths)
    heads = jnp.zeros_like(jnp.asarray(batch.styles))

    def bar_error(params):
        vel = model.predict(params, inputs, lengths, config=cfg)
        own = vel[int(batch.styles[0])][None]
        return float(loss.level_error(own, jnp.asarray(batch.targets), lengths, heads, inputs,
                                      "onset"))

    assert bar_error(levelled.params) < bar_error(same_lr.params) < bar_error(state.params)
    assert np.isfinite(jax.device_get(metrics)["se"]).all()


def test_absolute_error_step_scores_and_follows_the_absolute_error(data_dir):
    """--error=absolute: the step's per-style "se" sums |prediction - target| over the onset
    cells of the parameters it started from, and its update differs from the squared error's
    (the default, the paper's)."""
    config, cfg, state, songs = _three_style_setup(data_dir, loss="onset")
    batch = next(batching.epoch_batches(songs, songs_per_batch=2, windows_per_batch=8))
    absolute = dataclasses.replace(config.optim, error="absolute")
    after_abs, metrics, _ = _step(state, batch, cfg, absolute, False)
    after_sq, metrics_sq, _ = _step(state, batch, cfg, config.optim, False)

    vel = model.predict(state.params, jnp.asarray(batch.inputs), jnp.asarray(batch.lengths),
                        config=cfg)
    own = np.asarray(vel)[int(batch.styles[0])]
    real = np.arange(own.shape[1])[None, :, None] < np.asarray(batch.lengths)[:, None, None]
    onsets = (np.asarray(encoding.onset_channels(np.asarray(batch.inputs))) > 0) & real
    diff = (own - np.asarray(batch.targets))[onsets]
    style = int(batch.styles[0])
    got = jax.device_get(metrics)
    np.testing.assert_allclose(got["cells"][style], onsets.sum())
    np.testing.assert_allclose(got["se"][style], np.abs(diff).sum(), rtol=1e-3)
    np.testing.assert_allclose(jax.device_get(metrics_sq)["se"][style], np.square(diff).sum(),
                               rtol=1e-3)
    moved = [not np.allclose(a, b) for a, b in zip(
        jax.tree.leaves(jax.device_get(after_abs.params)),
        jax.tree.leaves(jax.device_get(after_sq.params)))]
    assert any(moved)
