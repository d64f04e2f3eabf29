"""The multi-task network: named outputs and the single-task variants (round trip: test_round_trip.py)."""

import numpy as np
import pytest

from kerasbrain.models.multitask import MultiTaskNet

SMALL = dict(encoder="resnet18", decoder_filters=(16, 8, 8, 8, 4))


def test_outputs_are_named_by_task_with_known_shapes():
    model = MultiTaskNet(**SMALL)
    x = np.random.default_rng(0).uniform(size=(3, 64, 96, 3)).astype("float32")
    out = model.predict_on_batch(x)
    assert set(out) == {"class", "mask"}
    assert out["class"].shape == (3, 4) and out["mask"].shape == (3, 64, 96, 1)
    np.testing.assert_allclose(out["class"].sum(axis=1), 1.0, atol=1e-5)
    assert model.size_divisor == 32 and model.spatial_dims == 2


@pytest.mark.parametrize("tasks", [("class",), ("mask",)])
def test_single_task_baselines_come_from_the_same_code(tasks):
    model = MultiTaskNet(tasks=tasks, **SMALL)
    assert set(model.predict_on_batch(np.zeros((1, 32, 32, 3), "float32"))) == set(tasks)
    with pytest.raises(ValueError, match="tasks must be"):
        MultiTaskNet(tasks=("class", "boxes"), **SMALL)
