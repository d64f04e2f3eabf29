import csv

import keras
import numpy as np
import pytest

from kerasbrain.training.config import config_from_dict
from kerasbrain.training.train_unet3d import train_unet3d

TINY = {
    "model": {"base_filters": 4, "depth": 2},
    "training": {"patch_size": [16, 16, 16], "batch_size": 2, "validation_patches": 2, "steps_per_epoch": 2},
    "data": {"validation_fraction": 0.34},
}


def test_train_writes_a_complete_run_and_resumes(msd_dir, tmp_path):
    run = tmp_path / "run"
    config = config_from_dict(TINY)
    first = train_unet3d(msd_dir, run, config, epochs=1, verbose=0, progress=lambda m: None)
    assert (run / "best.keras").exists() and (run / "last.keras").exists()
    assert first["split"]["validation"] and not set(first["split"]["validation"]) & set(first["split"]["train"])
    assert any((run / "logs").rglob("events.out.tfevents*"))
    saved_split = (run / "split.json").read_text()
    # running again with more epochs continues after epoch 1 instead of starting over
    messages = []
    second = train_unet3d(msd_dir, run, config, epochs=2, verbose=0, progress=messages.append)
    assert any("resuming after epoch 1" in m for m in messages)
    assert len(second["history"]["loss"]) == 1
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    # exact HD95 on the validation patches is logged beside the Keras metrics
    assert all(0.0 <= float(r["val_hd95_WT"]) <= 373.13 for r in rows)
    assert (run / "split.json").read_text() == saved_split
    model = keras.saving.load_model(run / "last.keras")
    out = model.predict_on_batch(np.zeros((1, 16, 16, 16, 4), "float32"))
    assert out.shape == (1, 16, 16, 16, 3)


def test_thick_slice_strides_train_with_deep_supervision(msd_dir, tmp_path):
    """[model] strides: the first pooling in plane only; the targets of the half-resolution head follow it."""
    from kerasbrain.training.train_unet3d import deep_supervision_targets

    config = config_from_dict({**TINY, "model": {"base_filters": 4, "depth": 2, "deep_supervision": 1,
                                                 "strides": [[2, 2, 1], [2, 2, 2]],
                                                 "kernel_sizes": [[3, 3, 1], [3, 3, 3], [3, 3, 3]]},
                               "training": {**TINY["training"], "patch_size": [16, 16, 6]}})
    assert config.model.strides == ((2, 2, 1), (2, 2, 2))
    target = np.arange(2 * 16 * 16 * 6 * 3, dtype="float32").reshape(2, 16, 16, 6, 3)
    _, (full, half) = deep_supervision_targets(1, config.model.strides[:1])(None, target)
    np.testing.assert_array_equal(half, target[:, ::2, ::2, :])
    result = train_unet3d(msd_dir, tmp_path / "thick", config, epochs=1, verbose=0, progress=lambda m: None)
    assert np.isfinite(result["history"]["loss"][0])
    model = keras.saving.load_model(tmp_path / "thick" / "last.keras")
    assert model.get_layer("encoder0_conv0").kernel.shape[:3] == (3, 3, 1)
    outputs = model.predict_on_batch(np.zeros((1, 16, 16, 6, 4), "float32"))
    assert [o.shape for o in outputs] == [(1, 16, 16, 6, 3), (1, 8, 8, 6, 3)]
    with pytest.raises(ValueError, match=r"patch_size sides must be positive multiples of \(4, 4, 2\)"):
        train_unet3d(msd_dir, tmp_path / "odd", config_from_dict(
            {**TINY, "model": {**config.to_dict()["model"], "strides": [[2, 2, 1], [2, 2, 2]]},
             "training": {**TINY["training"], "patch_size": [16, 16, 5]}}), epochs=1, verbose=0, progress=None)


def test_deep_supervision_trains(msd_dir, tmp_path):
    config = config_from_dict({**TINY, "model": {"base_filters": 4, "depth": 2, "deep_supervision": 1}})
    result = train_unet3d(msd_dir, tmp_path / "ds", config, epochs=1, verbose=0, progress=lambda m: None)
    h = {k: v[0] for k, v in result["history"].items()}
    assert np.isfinite(h["loss"]) and "val_probabilities_dice_WT" in h
    # nnU-Net's weights: 1 for the full-resolution output, 0.5 for the half-resolution one, normalised
    assert h["val_loss"] == pytest.approx(h["val_probabilities_loss"] / 1.5 + h["val_aux1_loss"] * 0.5 / 1.5,
                                          rel=1e-4)
    model = keras.saving.load_model(tmp_path / "ds" / "last.keras")
    outputs = model.predict_on_batch(np.zeros((1, 16, 16, 16, 4), "float32"))
    assert [o.shape for o in outputs] == [(1, 16, 16, 16, 3), (1, 8, 8, 8, 3)]
