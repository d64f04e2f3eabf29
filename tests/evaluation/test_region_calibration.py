"""Temperature per region for the 3-D segmenter: known errors, a recovered known temperature, and
temperatures folded into a real network give what scaling its probabilities gives."""

import keras
import numpy as np
import pytest

from kerasbrain.evaluation.region_calibration import (binary_calibration_errors, fit_region_temperature,
                                                      fold_region_temperatures, scale_probabilities)


def test_scaling_keeps_one_half_and_sharpens_or_softens():
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(scale_probabilities(p, 2.0), [1 / (1 + 3), 0.5, 3 / (3 + 1)], atol=1e-9)  # 9^(1/2)
    np.testing.assert_allclose(scale_probabilities(p, 1.0), p, atol=1e-9)


def test_calibration_errors_known_answers():
    y = np.r_[np.ones(80), np.zeros(20)]
    calibrated = binary_calibration_errors(np.full(100, 0.8), y)
    assert calibrated["ece"] == pytest.approx(0.0) and calibrated["brier"] == pytest.approx(0.16)
    y = np.r_[np.ones(60), np.zeros(40)]
    over = binary_calibration_errors(np.full(100, 0.9), y)
    assert over["ece"] == pytest.approx(0.3) and over["mce"] == pytest.approx(0.3)
    assert over["nll"] == pytest.approx(-(0.6 * np.log(0.9) + 0.4 * np.log(0.1)))
    two_bins = binary_calibration_errors(np.r_[np.full(50, 0.05), np.full(50, 0.95)], np.r_[np.zeros(50), np.ones(50)])
    assert two_bins["ece"] == pytest.approx(0.05)


def test_a_known_overconfidence_is_recovered():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, 200_000)
    y = rng.uniform(size=z.size) < 1 / (1 + np.exp(-z / 2.5))  # the truth follows logits / 2.5
    p = 1 / (1 + np.exp(-z))  # the model says logits: overconfident by T = 2.5
    t = fit_region_temperature(p, y)
    assert t == pytest.approx(2.5, rel=0.03)
    before, after = binary_calibration_errors(p, y), binary_calibration_errors(scale_probabilities(p, t), y)
    assert after["ece"] < before["ece"] / 3 and after["nll"] < before["nll"]


def test_folded_temperatures_scale_each_region_of_a_real_network():
    from kerasbrain.models.unet import UNet

    keras.utils.set_random_seed(2)
    model = UNet(in_channels=2, out_channels=3, base_filters=4, depth=2)
    x = np.random.default_rng(2).normal(size=(3, 8, 8, 8, 2)).astype(np.float32)  # three different items
    before = np.asarray(model.predict_on_batch(x))
    temperatures = [0.5, 1.0, 3.0]
    fold_region_temperatures(model, temperatures)
    after = np.asarray(model.predict_on_batch(x))
    for r, t in enumerate(temperatures):
        np.testing.assert_allclose(after[..., r], scale_probabilities(before[..., r], t), atol=2e-5)
    np.testing.assert_array_equal(after >= 0.5, before >= 0.5)
    with pytest.raises(ValueError, match="3 positive temperatures"):
        fold_region_temperatures(model, [1.0, -1.0, 1.0])
