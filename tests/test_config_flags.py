"""Tests of stylenet_jax.config_flags: one absl flag per config field, and back."""

from absl import flags

import pytest

from stylenet_jax import config_flags, encoding
from stylenet_jax.config import Config, ModelConfig

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

