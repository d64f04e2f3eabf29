import pytest

from kerasbrain.training.config import Config, ConfigError, config_from_dict, load_config, shipped_configs


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[training]\npatch_size = [64, 64, 32]\nlearning_rate = 1\n[model]\nnorm = "batch"\n')
    config = load_config(path)
    assert config.training.patch_size == (64, 64, 32)
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)
    assert config.model.norm == "batch" and config.model.depth == Config().model.depth


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[training]\nlearnig_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"c.toml: \[training\]: unknown key\(s\) \['learnig_rate'\]"):
        load_config(path)


def test_wrong_type_and_section():
    with pytest.raises(ConfigError, match=r"\[training\].epochs: expected a number"):
        config_from_dict({"training": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match="unknown section"):
        config_from_dict({"trainer": {}})


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="nope.toml: file not found"):
        load_config(tmp_path / "nope.toml")


def test_shipped_configs_load_by_name():
    assert {"seed003_unet3d", "nnunet_unet3d"} <= set(shipped_configs())
    seed003 = load_config("seed003_unet3d")
    assert seed003.training.loss == "soft_dice" and seed003.training.batch_size == 8
    assert seed003.training.patch_size == (160, 160, 16)
    nnunet = load_config("nnunet_unet3d")
    assert nnunet.model.deep_supervision == 2
    aug = nnunet.augmentation  # nnU-Net's intensity augmentations at its probabilities
    assert (aug.blur_prob, aug.contrast_prob, aug.low_resolution_prob, aug.gamma_per_channel) == (0.2, 0.15, 0.25, True)
    budget = load_config("cpu_budget_unet3d")  # issue 14's ablation winner: the baseline's settings plus two
    assert (budget.training.learning_rate, budget.training.patch_size, budget.training.batch_size) == (
        3e-3, (48, 48, 48), 4)
    assert budget.training.lr_schedule == "constant" and budget.inference.mirror
    assert budget.training.ema_momentum == 0.99  # averaged weights (README "Averaged weights")
    assert budget.augmentation.gamma_per_channel  # README "A gamma per channel"


def test_slice_configs():
    from kerasbrain.training.config2d import load_slice_config, slice_config_from_dict

    seed004 = load_slice_config("seed004_resnet50")
    assert seed004.model.encoder == "resnet50" and seed004.model.encoder_weights == "imagenet"
    assert [(s.epochs, s.learning_rate, s.freeze_encoder) for s in seed004.stages] == [(5, 1e-4, True),
                                                                                        (15, 1e-5, False)]
    assert seed004.training.plateau_patience == 3 and seed004.training.plateau_factor == 0.1
    assert load_slice_config("seed002_unet2d").augmentation.rotation_degrees == 35.0
    assert seed004.augmentation.rotation_degrees == 25.0 and seed004.augmentation.elastic  # seed 004's +-25 degrees
    with pytest.raises(ConfigError, match=r"\[\[stages\]\] #1: unknown key"):
        slice_config_from_dict({"stages": [{"epoch": 3}]})


def test_postprocessing_choice_settings():
    config = config_from_dict({"postprocessing": {"choose_on": "validation", "max_cases": 5, "target": "legacy"}})
    assert (config.postprocessing.choose_on, config.postprocessing.max_cases) == ("validation", 5)
    assert Config().postprocessing.choose_on == "validation+train" and Config().postprocessing.target == "lesion"
    with pytest.raises(ConfigError, match=r"choose_on.*'validation\+train', 'validation' or 'off'.*'train'"):
        config_from_dict({"postprocessing": {"choose_on": "train"}})
    with pytest.raises(ConfigError, match="lesion_preset"):
        config_from_dict({"postprocessing": {"lesion_preset": "BRATS"}})
    with pytest.raises(ConfigError, match="max_cases"):
        config_from_dict({"postprocessing": {"max_cases": 0}})
