"""ECE, MCE, Brier, temperature scaling: known answers, and the temperature folded into a real model."""

import numpy as np
import pytest

from kerasbrain.evaluation.calibration import (apply_temperature, calibration_errors, fit_temperature,
                                               fold_temperature)

P = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
Y = np.array([0, 1, 0, 0])


def test_ece_mce_and_brier_by_hand():
    s = calibration_errors(P, Y, bins=15)
    # bin of 0.9: accuracy 0.5, confidence 0.9 (gap 0.4, half the images); bin of 0.6: accuracy 1, gap 0.4
    assert s["ece"] == pytest.approx(0.4) and s["mce"] == pytest.approx(0.4)
    # (0.02 + 1.62 + 0.32 + 0.32) / 4
    assert s["brier"] == pytest.approx(0.57) and s["accuracy"] == 0.75
    perfect = calibration_errors(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2]))
    assert perfect["ece"] == pytest.approx(0.0, abs=1e-9) and perfect["brier"] == pytest.approx(0.0, abs=1e-9)


def test_temperature_one_changes_nothing_and_never_the_class():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=50)
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-9)
    for t in (0.3, 2.5):
        q = apply_temperature(p, t)
        np.testing.assert_array_equal(q.argmax(1), p.argmax(1))
        np.testing.assert_allclose(q.sum(1), 1.0)
    assert (apply_temperature(p, 3.0).max(1) <= p.max(1) + 1e-12).all()  # T > 1 softens


def test_the_fitted_temperature_recovers_the_true_one():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(20000, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)  # overconfident by a factor 2
    truth = apply_temperature(p, 2.0)
    y = np.array([rng.choice(4, p=row) for row in truth])
    assert fit_temperature(p, y) == pytest.approx(2.0, rel=0.05)
    assert calibration_errors(apply_temperature(p, fit_temperature(p, y)), y)["ece"] < calibration_errors(p, y)["ece"]


def test_folding_into_the_class_layer_equals_scaling_the_logits():
    import keras

    from kerasbrain.models.multitask import MultiTaskNet

    keras.utils.set_random_seed(3)
    model = MultiTaskNet("resnet18", tasks=("class",))
    x = np.random.default_rng(2).uniform(size=(3, 64, 64, 3)).astype("float32")
    before = np.asarray(model.predict_on_batch(x)["class"], np.float64)
    fold_temperature(model, 2.5)
    after = np.asarray(model.predict_on_batch(x)["class"], np.float64)
    np.testing.assert_allclose(after, apply_temperature(before, 2.5), atol=1e-5)
    assert model.calibration_temperature == 2.5 and model.get_config()["calibration_temperature"] == 2.5
