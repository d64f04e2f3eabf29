"""Seed 003's three label channels (`[model] targets = "labels"`): trained as such, saved answering in regions."""

import keras
import numpy as np
import pytest

from kerasbrain.data.labels import REGION_FROM_CHANNELS, REGIONS, labels_to_channels, training_targets
from kerasbrain.metrics import MeanSoftDice
from kerasbrain.models.label_channels import REGION_GROUPS, LabelChannelsToRegions, RegionsFromLabels
from kerasbrain.training.config import config_from_dict


def test_label_channels_and_the_regions_they_answer():
    labels = np.array([0, 1, 2, 3])  # background, necrotic core, edema, enhancing
    np.testing.assert_array_equal(labels_to_channels(labels), [[0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert training_targets("labels")[0] == ("ED", "NCR", "ET")
    assert REGION_GROUPS == tuple(REGION_FROM_CHANNELS[r] for r in REGIONS)  # the model's and the data's rule agree
    with pytest.raises(ValueError, match="targets"):
        training_targets("classes")
    # ED, NCR, ET probabilities -> WT = max of all, TC = max(NCR, ET), ET
    channels = np.array([[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.55, 0.4]]], "float32")
    regions = keras.ops.convert_to_numpy(LabelChannelsToRegions()(channels))
    np.testing.assert_allclose(regions, [[[0.7, 0.2, 0.1], [0.6, 0.6, 0.6], [0.55, 0.55, 0.4]]])


def test_mean_soft_dice_is_seed_003s_coefficient():
    metric = MeanSoftDice()
    y = np.array([[[1.0], [1.0], [0.0], [0.0]]])  # one sample, 4 voxels, one channel
    p = np.array([[[1.0], [0.5], [0.5], [0.0]]])
    metric.update_state(y, p)  # (2 x 1.5 + eps) / (2 + 2 + eps) = 0.75
    metric.update_state(y, y)  # 1.0; the epoch's value is the mean of its batches
    assert float(metric.result()) == pytest.approx(0.875, abs=1e-6)


def test_a_label_channel_run_trains_on_labels_and_saves_a_region_model(msd_dir, tmp_path):
    from kerasbrain.families import get_family
    from kerasbrain.training.train_unet3d import train_unet3d

    config = config_from_dict({
        "model": {"base_filters": 4, "depth": 2, "deep_supervision": 1, "targets": "labels"},
        "training": {"patch_size": [16, 16, 16], "batch_size": 2, "validation_patches": 2, "steps_per_epoch": 2},
        "data": {"validation_fraction": 0.34},
        "inference": {"window": [32, 32, 32]},  # not the default 128^3 around a 41 x 38 x 35 phantom
    })
    result = train_unet3d(msd_dir, tmp_path / "run", config, epochs=1, verbose=0, progress=lambda m: None)
    history = result["history"]
    for key in ("dice_ED", "dice_NCR", "probabilities_dice_ET", "val_probabilities_soft_dice", "val_hd95_NCR"):
        assert any(k.endswith(key) for k in history), (key, sorted(history))
    assert not any("WT" in k for k in history)
    model = keras.saving.load_model(tmp_path / "run" / "best.keras")
    assert isinstance(model, RegionsFromLabels) and model.size_divisor == 4
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 16, 4)).astype("float32")
    channels = keras.ops.convert_to_numpy(model.network.predict_on_batch(x)[0])
    regions = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    np.testing.assert_allclose(regions[..., 0], channels.max(-1), atol=1e-6)
    np.testing.assert_allclose(regions[..., 1], channels[..., 1:].max(-1), atol=1e-6)
    np.testing.assert_allclose(regions[..., 2], channels[..., 2], atol=1e-6)
    # the region pipeline reads it like any other network
    family = get_family("unet3d")
    evaluation = family.evaluate(result["best"], msd_dir, tmp_path / "eval", None, progress=lambda m: None)
    import csv

    rows = list(csv.DictReader((tmp_path / "eval" / "cases.csv").open()))
    assert rows and all(0.0 <= float(r["dice_WT"]) <= 1.0 for r in rows) and "| dice_WT |" in evaluation["text"]
