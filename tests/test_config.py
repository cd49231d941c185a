"""Tests of stylenet_jax.config and stylenet_jax.config_flags: one definition per setting."""

import dataclasses
import json

import pytest
from absl import flags

from stylenet_jax import config_flags, encoding
from stylenet_jax.config import Config, DataConfig, ModelConfig, OptimConfig, ScheduleConfig


def parsed(*argv: str, cls=Config) -> flags.FlagValues:
    values = flags.FlagValues()
    config_flags.define_flags(values, cls=cls)
    values(["prog", *argv])
    return values


def test_every_setting_is_one_field_with_a_doc_line_and_a_unique_flag():
    names = [name for _, _, name in config_flags.fields()]
    assert len(names) == len(set(names))  # no flag name in two groups
    for _, f, _ in config_flags.fields():
        assert f.metadata["doc"].strip()
    # Not flags: set by the program from the data and the encoding.
    assert not {"num_styles", "input_size", "output_size"} & set(names)
    assert ModelConfig().input_size == encoding.INPUT_SIZE
    assert ModelConfig().output_size == encoding.NUM_KEYS


def test_flags_default_to_the_config_and_parse_back_into_it():
    assert config_flags.config_from_flags(parsed()) == Config()
    config = config_flags.config_from_flags(parsed(
        "--hidden_size=8", "--nointerpretation_layer", "--precision=highest", "--clip=global",
        "--loss=onset", "--window=50", "--synthetic_styles=a,b,c", "--num_epochs=3"))
    assert config.model.hidden_size == 8 and not config.model.use_interpretation_layer
    assert config.model.precision == "highest" and config.optim.clip == "global"
    assert config.optim.loss == "onset" and config.data.window == 50
    assert config.data.synthetic_styles == ("a", "b", "c")
    assert config.schedule.num_epochs == 3
    assert config == Config().replace(hidden_size=8, use_interpretation_layer=False,
                                      precision="highest", clip="global", loss="onset",
                                      window=50, synthetic_styles=("a", "b", "c"), num_epochs=3)


def test_one_group_defines_only_its_own_flags():
    values = parsed("--hidden_size=4", cls=ModelConfig)
    assert "hidden_size" in values and "learning_rate" not in values
    assert config_flags.group_from_flags(ModelConfig, values) == ModelConfig(hidden_size=4)


def test_enum_flags_refuse_other_values():
    with pytest.raises(flags.IllegalFlagValueError):
        parsed("--clip=sideways")


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
