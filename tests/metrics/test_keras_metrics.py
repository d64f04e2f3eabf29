import keras
import numpy as np
import pytest

from kerasbrain.metrics import RegionDice, RegionSensitivity, RegionSpecificity, dice, region_metrics


def test_streaming_dice_equals_numpy_over_all_batches():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(4, 6, 6, 6, 3)) > 0.7).astype("float32")
    p = rng.uniform(size=(4, 6, 6, 6, 3)).astype("float32")
    metric = RegionDice(channel=1)
    metric.update_state(y[:2], p[:2])
    metric.update_state(y[2:], p[2:])
    assert float(metric.result()) == pytest.approx(dice(p[..., 1] > 0.5, y[..., 1] > 0.5), rel=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 1.0  # nothing seen: empty vs empty


def test_rates_hand_computed():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], "float32").reshape(1, 8, 1)
    p = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.2, 0.2, 0.2], "float32").reshape(1, 8, 1)
    sens, spec = RegionSensitivity(0), RegionSpecificity(0)
    sens.update_state(y, p)
    spec.update_state(y, p)
    assert float(sens.result()) == pytest.approx(2 / 3)
    assert float(spec.result()) == pytest.approx(4 / 5)


def test_names_and_config():
    names = [m.name for m in region_metrics()]
    assert names[:3] == ["dice_WT", "sens_WT", "spec_WT"] and len(names) == 9
    m = RegionDice(2, threshold=0.3, name="dice_ET")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert isinstance(clone, RegionDice) and clone.get_config() == m.get_config()
