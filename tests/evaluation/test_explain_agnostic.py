"""SHAP and LIME wrappers: the heat map must light up where a black-box model's evidence is."""

import lime  # noqa: F401  (required test extras: a broken install fails here, it is never a skip)
import numpy as np
import pytest
import shap  # noqa: F401

from kerasbrain.evaluation.explain_agnostic import lime_map, shap_map
from tests.conftest import once

# No Keras here: the wrappers explain a numpy model, so a second backend adds nothing (the first SHAP
# call of a process also spends ~8 s compiling shap's numba functions).
pytestmark = once


def evidence_model(batch):
    """Class 1's probability rises with the brightness of the top-left quadrant, and only with it."""
    batch = np.asarray(batch, np.float64)
    h, w = batch.shape[1:3]
    score = batch[:, : h // 2, : w // 2].mean(axis=(1, 2, 3)) / 255.0
    p1 = 1 / (1 + np.exp(-10 * (score - 0.5)))
    return np.stack([1 - p1, p1], axis=1)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    image = rng.integers(60, 100, (64, 64, 3)).astype(np.uint8)
    image[:32, :32] = 230  # bright evidence top-left
    image[40:56, 40:56] = 230  # an equally bright distractor the model ignores
    return image


@pytest.mark.parametrize("explain", [lime_map, shap_map], ids=["lime", "shap"])
def test_heat_map_is_on_the_evidence(image, explain):
    heat = explain(evidence_model, image, 1)
    assert heat.shape == (64, 64) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    assert heat[:32, :32].mean() > 5 * max(heat[32:, 32:].mean(), 1e-3)
    assert heat[44:52, 44:52].mean() < 0.1  # the distractor gets nothing
