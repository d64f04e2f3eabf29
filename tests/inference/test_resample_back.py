"""Prediction at a target spacing comes back on the input's own grid, with a known answer.

A real tiny U-Net whose last convolution has zero kernel and bias b outputs sigmoid(b) at every
voxel it sees, whatever the input; so the full-grid probabilities must be exactly sigmoid(b) inside
the case's head crop and 0 outside, after resampling to 2 mm and back.
"""

import keras
import numpy as np
import pytest

from kerasbrain.data.layouts import discover, load_case
from kerasbrain.data.preprocess import preprocess_case
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.predict_volume import predict_case
from kerasbrain.models.unet import UNet
from kerasbrain.runtime import predictor

BIASES = np.array([2.0, -1.0, 0.5], np.float32)  # WT, TC, ET: TC below the 0.5 threshold


@pytest.fixture(scope="module")
def constant_model():
    keras.utils.set_random_seed(0)
    model = UNet(base_filters=4, depth=2)
    logits = model.get_layer("logits")
    kernel, _ = logits.get_weights()
    logits.set_weights([np.zeros_like(kernel), BIASES])
    return model


@pytest.mark.parametrize("spacing", [None, (2.0, 2.0, 2.0), (1.5, 1.0, 2.5)])
def test_probabilities_come_back_on_the_input_grid(constant_model, msd_dir, spacing):
    case = load_case(discover(msd_dir).labelled()[1])
    cfg = InferenceConfig(window=(16, 16, 16), overlap=0.25, batch_size=2)
    labels, probs = predict_case(case, predictor(constant_model, "graph"), 3, cfg, target_spacing=spacing)
    assert probs.shape == case.image.shape[:3] + (3,) and labels.shape == case.image.shape[:3]
    bbox = preprocess_case(case, None, normalize=False).bbox
    inside = np.zeros(case.image.shape[:3], bool)
    inside[tuple(slice(a, b) for a, b in bbox)] = True
    expected = 1 / (1 + np.exp(-BIASES))
    np.testing.assert_allclose(probs[inside], np.broadcast_to(expected, (inside.sum(), 3)), atol=1e-5)
    assert not probs[~inside].any()
    # WT and ET on, TC off: BraTS nesting decodes ET wherever ET is on, even outside TC
    assert set(np.unique(labels[inside])) == {3} and not labels[~inside].any()
