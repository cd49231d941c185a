"""Tests of stylenet_jax.config: validation, replace, JSON round trips, hashing."""

import dataclasses
import json

import pytest

from stylenet_jax.config import Config, DataConfig, ModelConfig, OptimConfig, ScheduleConfig

@pytest.mark.parametrize("change,message", [
    (dict(hidden_size=0), "hidden_size must be >= 1"),
    (dict(keep_prob=0.0), "keep_prob"),
    (dict(learning_rate=0.0), "learning_rate must be > 0"),
    (dict(window=0), "window must be >= 1"),
    (dict(num_epochs=0), "num_epochs must be >= 1"),
    (dict(keep_checkpoints=0), "keep_checkpoints must be >= 1"),
    (dict(eval_every_epochs=-1), "eval_every_epochs must be >= 0"),
    (dict(carry_state=True, pack_windows=True), "exclude each other"),
    (dict(synthetic_styles=()), "at least one style"),
    (dict(synthetic_songs_per_style=0), "synthetic_songs_per_style must be >= 1"),
    (dict(synthetic_steps=0), "synthetic_steps must be >= 1"),
    (dict(log_every_steps=0), "log_every_steps must be >= 1"),
    (dict(spread_of="chords"), "spread_of must be one of"),
    (dict(level_weight=-1.0), "level_weight must be >= 0"),
    (dict(shared_heads=True, tree_prior=True), "shared_heads and a tree prior"),
    (dict(shared_heads=True, tree_prior_dir="runs/priors"), "shared_heads and a tree prior"),
])
def test_invalid_settings_are_refused_with_their_name(change, message):
    with pytest.raises(ValueError, match=message):
        Config().replace(**change)


def test_replace_refuses_unknown_names_and_json_round_trips():
    with pytest.raises(ValueError, match="unknown setting"):
        Config().replace(hidden_sise=3)
    config = Config().replace(hidden_size=12, synthetic_styles=("x",), loss="active")
    assert Config.from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config
    assert Config.from_dict({"model": {"hidden_size": 12}}).model.hidden_size == 12
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({"hidden": 3})


def test_configs_are_hashable_static_arguments():
    # The jitted steps take them as static arguments: equal configs must hash equal.
    assert hash(ModelConfig(hidden_size=8)) == hash(ModelConfig(hidden_size=8))
    assert {OptimConfig(), OptimConfig()} == {OptimConfig()}
    assert DataConfig().layout == "independent"
    assert DataConfig(pack_windows=True).layout == "packed"
    assert ScheduleConfig().num_epochs == 160  # the paper's
