"""The one config reader, on both families' configs: strict names, strict types, arrays of tables."""

import json

import pytest

from kerasbrain.config import ConfigError, config_from_json_file, load_config_file, parse_config, save_config_json
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


@pytest.mark.parametrize("cls,raw,message", [
    (Config, {"inference": {"overlap": -0.1}}, r"\[inference\].overlap: must be in \[0, 0.95\]"),
    (Config, {"inference": {"overlap": 1}}, r"\[inference\].overlap: must be in \[0, 0.95\]"),
    (Config, {"inference": {"batch_size": 0}}, r"\[inference\].batch_size: must be at least 1. Received: 0"),
    (Config, {"inference": {"window": [64, 0, 64]}}, r"\[inference\].window: three positive sides"),
    (Config, {"training": {"fg_fraction": 1.5}}, r"\[training\].fg_fraction: must be in \[0, 1\]"),
    (Config, {"data": {"target_spacing": [1.0, 1.0]}}, r"\[data\].target_spacing: \[\] or three positive sizes"),
    (SliceConfig, {"data": {"fold": 1, "test_fold": 1}}, r"\[data\].test_fold: must differ from fold"),
    (SliceConfig, {"data": {"fold": 5}}, r"\[data\].fold: must be in \[0, n_splits = 5\)"),
    (SliceConfig, {"stages": [{"epochs": 0}]}, r"\[\[stages\]\] #1.epochs: must be at least 1"),
])
def test_out_of_range_values_are_one_line_naming_the_key(cls, raw, message):
    with pytest.raises(ConfigError, match="^run.toml: " + message):
        parse_config(cls, raw, "run.toml")


def test_multitask_config_ranges():
    from kerasbrain.training.config_multitask import MultiTaskConfig

    with pytest.raises(ConfigError, match=r"\[data\].image_size: a positive multiple of 32. Received: 100"):
        parse_config(MultiTaskConfig, {"data": {"image_size": 100}}, "m.toml")
    with pytest.raises(ConfigError, match=r"\[training\].schedule: alternate or joint"):
        parse_config(MultiTaskConfig, {"training": {"schedule": "round-robin"}}, "m.toml")


def test_changes_on_top_of_a_file_are_applied_and_checked_like_it(tmp_path):
    path = tmp_path / "base.toml"
    path.write_text('[training]\nbatch_size = 2\nlr_schedule = "constant"\n')
    config = load_config_file(Config, path, ('training.lr_schedule = "cosine"', "model.deep_supervision=2"))
    assert (config.training.batch_size, config.training.lr_schedule) == (2, "cosine")
    assert config.model.deep_supervision == 2
    assert load_config_file(Config, None, ("training.batch_size=3",)).training.batch_size == 3
    assert load_config_file(Config, path, ("augment = false",)).augment is False  # a top-level key
    with pytest.raises(ConfigError, match=r"base.toml \+ training.batch_sise=4.*unknown key\(s\) \['batch_sise'\]"):
        load_config_file(Config, path, ("training.batch_sise=4",))
    with pytest.raises(ConfigError, match=r"'training.batch_size': expected \[SECTION.\]KEY=VALUE"):
        load_config_file(Config, path, ("training.batch_size",))
    with pytest.raises(ConfigError, match=r"'training.lr_schedule=cosine': the value is not TOML"):
        load_config_file(Config, path, ("training.lr_schedule=cosine",))
    with pytest.raises(ConfigError, match=r"'a.b.c=1': expected"):
        load_config_file(Config, path, ("a.b.c=1",))
