"""The one config reader, on both families' configs: strict names, strict types, arrays of tables."""

import json

import pytest

from kerasbrain.config import ConfigError, config_from_json_file, parse_config, save_config_json
from kerasbrain.training.config import Config
from kerasbrain.training.config2d import SliceConfig, Stage


@pytest.mark.parametrize("raw,message", [
    ({"augment": 1}, "augment must be true or false. Received: 1"),
    ({"stages": []}, r"\[\[stages\]\] must be a non-empty list of tables"),
    ({"stages": [{"epochs": 2.5}]}, r"\[\[stages\]\] #1.epochs: expected a whole number. Received: 2.5"),
    ({"stages": [{"epochs": 2}, {"epoch": 3}]}, r"\[\[stages\]\] #2: unknown key\(s\) \['epoch'\]"),
    ({"model": {"encoder": 50}}, r"\[model\].encoder: expected a string"),
    ({"model": "resnet50"}, r"\[model\]: expected a table"),
    ({"training": {"batch_size": True}}, r"\[training\].batch_size: expected a number"),
    ({"trainig": {}}, r"unknown section\(s\) \['trainig'\]"),
])
def test_slice_config_errors_name_the_place(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(SliceConfig, raw, "run.toml")


def test_values_are_read_as_their_defaults_types():
    config = parse_config(SliceConfig, {"stages": [{"epochs": 2, "learning_rate": 1}], "augment": False}, "x")
    assert config.stages == (Stage(epochs=2, learning_rate=1.0),) and isinstance(config.stages[0].learning_rate, float)
    assert config.augment is False
    volume = parse_config(Config, {"training": {"patch_size": [32, 32, 32], "epochs": 4.0}}, "x")
    assert volume.training.patch_size == (32, 32, 32) and volume.training.epochs == 4


@pytest.mark.parametrize("config", [Config(), SliceConfig(stages=(Stage(1), Stage(2, 1e-5, True)))])
def test_json_round_trip(tmp_path, config):
    save_config_json(config, tmp_path / "config.json")
    assert config_from_json_file(type(config), tmp_path / "config.json") == config


def test_broken_json_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        config_from_json_file(Config, tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({"model": {"depth": "four"}}))
    with pytest.raises(ConfigError, match=r"config.json: \[model\].depth: expected a number"):
        config_from_json_file(Config, tmp_path / "config.json")
