"""Grad-CAM, Grad-CAM++ and LayerCAM on both backends: known answers on hand-made evidence, and real networks."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasbrain.evaluation.explain import class_activation_map, explain_classes

W = np.array([[3.0, 0.0], [0.0, 3.0]], np.float32)  # channel k is the evidence for class k


def head(a):
    return ops.softmax(ops.matmul(ops.mean(a, axis=(1, 2)), W))


def _features():
    a = np.zeros((2, 4, 4, 2), np.float32)
    a[:, :2, :2, 0] = 1.0  # class 0's evidence top-left
    a[:, 2:, 2:, 1] = 1.0  # class 1's evidence bottom-right
    a[1] *= 2.0  # a second, different image
    return a


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_the_map_lights_up_where_the_class_evidence_is(method):
    a = _features()
    for target, where, elsewhere in ((0, (slice(0, 2), slice(0, 2)), (slice(2, 4), slice(2, 4))),
                                     (1, (slice(2, 4), slice(2, 4)), (slice(0, 2), slice(0, 2)))):
        cam = class_activation_map(a, head, target, method)
        assert cam.shape == (2, 4, 4)
        np.testing.assert_allclose(cam[(slice(None),) + where], 1.0, atol=1e-6)  # normalised peak on the evidence
        np.testing.assert_allclose(cam[(slice(None),) + elsewhere], 0.0, atol=1e-6)  # the other class's evidence
    # one target per image, and resizing to the input
    cam = class_activation_map(a, head, [0, 1], method, size=(8, 8))
    assert cam.shape == (2, 8, 8) and cam[0, 0, 0] > 0.99 and cam[1, 7, 7] > 0.99


def test_gradcam_weights_are_the_mean_gradients():
    a = _features()[:1]
    p = np.asarray(head(a))[0]
    # d softmax_0 / d A_k(i, j) = p0 (delta_0k - p_k) * W_kk / 16: channel 0 gets +, channel 1 gets -
    w0, w1 = p[0] * (1 - p[0]) * 3 / 16, -p[0] * p[1] * 3 / 16
    expected = np.maximum(w0 * a[0, ..., 0] + w1 * a[0, ..., 1], 0)
    np.testing.assert_allclose(class_activation_map(a, head, 0)[0], expected / expected.max(), atol=1e-6)


def test_layercam_weighs_each_position_by_its_positive_gradient():
    """LayerCAM = relu(sum_k relu(dy/dA_k) * A_k): channel 1's negative gradient is dropped (Grad-CAM keeps
    it as a negative weight); with a contrast class the objective is p0 - p1, whose gradients are known."""
    a = _features()[:1]
    a[0, 1:3, 1:3, 1] += 0.5  # class 1 evidence overlapping class 0's, so the two maps differ
    p = np.asarray(head(a))[0]
    g0, g1 = p[0] * (1 - p[0]) * 3 / 16, -p[0] * p[1] * 3 / 16  # d p0 / d A_k at every position
    expected = np.maximum(g0, 0) * a[0, ..., 0] + np.maximum(g1, 0) * a[0, ..., 1]
    np.testing.assert_allclose(class_activation_map(a, head, 0, "layercam")[0], expected / expected.max(), atol=1e-6)
    gradcam = np.maximum(g0 * a[0, ..., 0] + g1 * a[0, ..., 1], 0)
    assert not np.allclose(gradcam / gradcam.max(), expected / expected.max(), atol=1e-3)
    # against class 1: d (p0 - p1) / d A_0 = 3/16 (p0 (1 - p0) + p0 p1), d / d A_1 = 3/16 (-p0 p1 - p1 (1 - p1))
    c0 = 3 / 16 * (p[0] * (1 - p[0]) + p[0] * p[1])
    contrast = np.maximum(c0, 0) * a[0, ..., 0]
    np.testing.assert_allclose(class_activation_map(a, head, 0, "layercam", contrast=1)[0],
                               contrast / contrast.max(), atol=1e-6)


def test_levels_joined_by_plus_are_averaged():
    from kerasbrain.models.multitask import MultiTaskNet

    keras.utils.set_random_seed(0)
    model = MultiTaskNet("resnet18", decoder_filters=(8, 8, 8, 8, 4))
    images = np.random.default_rng(1).uniform(size=(2, 64, 64, 3)).astype("float32")
    levels = [explain_classes(model, images, [0, 2], "layercam", level)[0] for level in ("P3", "P4", "P5")]
    fused, _ = explain_classes(model, images, [0, 2], "layercam", "P3+P4+P5")
    mean = np.mean(levels, axis=0)
    np.testing.assert_allclose(fused, mean / mean.max(axis=(1, 2), keepdims=True), atol=1e-5)


@pytest.mark.parametrize("layer", [None, "v2_stack_3_block1_out", "v2_stack_3_block2_out"])
def test_real_multitask_network(layer):
    from kerasbrain.models.multitask import MultiTaskNet

    keras.utils.set_random_seed(0)
    model = MultiTaskNet("resnet18", decoder_filters=(8, 8, 8, 8, 4))
    images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    maps, probabilities = explain_classes(model, images, method="gradcam++", layer=layer)
    assert maps.shape == (2, 64, 64) and maps.min() >= 0.0
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0, atol=1e-6)  # each image its own map, peak 1
    np.testing.assert_allclose(probabilities, model.predict_on_batch(images)["class"], atol=1e-5)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        explain_classes(model, images, layer="nope")


def _quadrant_model():
    """A real tiny network whose class 0 evidence is the top-left quadrant and class 1's the bottom-right."""
    inputs = keras.Input((16, 16, 3))
    logits = keras.layers.Dense(2, use_bias=False)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, {"class": keras.layers.Softmax()(logits)})
    weights = np.zeros((16, 16, 3, 2), np.float32)
    weights[:8, :8, :, 0] = 0.05
    weights[8:, 8:, :, 1] = 0.05
    model.layers[-2].set_weights([weights.reshape(-1, 2)])
    return model


def _quadrant_images():
    images = np.zeros((2, 16, 16, 3), np.float32)
    images[0, 2:6, 2:6] = 1.0  # evidence for class 0, top-left
    images[1, 1:7, 3:7] = 0.8  # a second, different image
    images[:, 12:, :4] = 0.5  # content the model ignores
    return images


def test_occlusion_finds_the_evidence():
    from kerasbrain.evaluation.explain import occlusion_sensitivity

    maps = occlusion_sensitivity(_quadrant_model(), _quadrant_images(), 0, patch=4, stride=2)
    assert maps.shape == (2, 16, 16) and maps.max() == pytest.approx(1.0)
    for m in maps:
        assert m[:11, :11].sum() == pytest.approx(m.sum(), rel=1e-4)  # the evidence, blurred by one patch width
        assert m[:8, :8].max() == m.max()
        assert m[12:, :4].max() < 1e-5


def test_integrated_gradients_are_complete_and_on_the_evidence():
    from kerasbrain.evaluation.explain import integrated_gradients

    model, images = _quadrant_model(), _quadrant_images()
    attribution = integrated_gradients(model, images, 0, steps=64, as_map=False)
    p = np.asarray(model.predict_on_batch(images)["class"])[:, 0]
    p0 = np.asarray(model.predict_on_batch(np.zeros_like(images))["class"])[:, 0]
    np.testing.assert_allclose(attribution.sum(axis=(1, 2, 3)), p - p0, rtol=1e-3)  # completeness
    maps = integrated_gradients(model, images, [0, 0], steps=16)
    assert (maps[:, 8:, :] == 0).all() and (maps[:, :, 8:] == 0).all() and maps.max() == pytest.approx(1.0)
