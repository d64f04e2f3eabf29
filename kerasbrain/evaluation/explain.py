"""Grad-CAM, Grad-CAM++ and LayerCAM (Selvaraju et al. 2017; Chattopadhay et al. 2018; Jiang et al.
2021) on any Keras backend.

The heat map of class c for feature maps A (B, h, w, K) is relu(sum_k w_k A_k), with w_k the
spatial mean of d y_c / d A_k (Grad-CAM) or the alpha-weighted sum of its positive part
(Grad-CAM++); LayerCAM weighs every position by its own positive gradient, relu(sum_k relu(d y_c /
d A_k) * A_k), which keeps the fine localisation of shallower levels. Maps are normalised to [0, 1]
per image and resized to the input. Levels joined by "+" ("P3+P4+P5") are explained one by one and
averaged; `contrast` explains y_c - y_contrast (for pseudo-masks: the tumour class against "no
tumour", so evidence of normal tissue cancels). Everything but the one
gradient is `keras.ops`; the gradient is taken with the running backend's own autodiff
(`_gradient`), so the same code explains a model on TensorFlow and on JAX.

For the multi-task and classifier networks the feature maps are the encoder's: its deepest
pyramid level "P5" by default (the last convolutional stage, what Grad-CAM usually uses), a
shallower level "P4" / "P3" / "P2" (finer maps, e.g. for pseudo-masks), or the output of any layer of the encoder named by `layer` that the class head depends on only through
the encoder's main path (a block output such as "v2_stack_2_block2_out").
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

METHODS = ("gradcam", "gradcam++", "layercam")
PYRAMID = ("P2", "P3", "P4", "P5")  # the encoder's outputs, strides 4 to 32


def _gradient(fn, x):
    """d sum(fn(x)) / dx with the running backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(fn(x))
        return tape.gradient(y, x)
    if backend == "jax":
        import jax

        return jax.grad(lambda a: ops.sum(fn(a)))(x)
    if backend == "torch":
        import torch

        x = torch.as_tensor(x).detach().requires_grad_(True)
        torch.sum(fn(x)).backward()
        return x.grad
    raise NotImplementedError(f"no gradient for backend {backend!r}")


def class_activation_map(features, head, class_index, method: str = "gradcam", size=None, contrast=None):
    """Heat maps (B, H, W) in [0, 1] from feature maps (B, h, w, K) and `head`: features -> (B, C) scores.

    `class_index` is an int or one index per image; `size` (H, W) resizes the maps (bilinear);
    `contrast` (a class index) explains the target's score minus that class's.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")
    features = ops.convert_to_tensor(features, "float32")
    target = np.broadcast_to(np.asarray(class_index), (features.shape[0],))

    def score(a):  # each image's score of its target class (minus the contrast class's)
        scores = head(a)
        weights = ops.one_hot(ops.convert_to_tensor(target, "int32"), scores.shape[-1])
        if contrast is not None:
            weights = weights - ops.one_hot(ops.full((features.shape[0],), contrast, "int32"), scores.shape[-1])
        return ops.sum(scores * weights, axis=-1)

    grads = ops.convert_to_tensor(_gradient(score, features))
    if method == "layercam":
        weights = None
        cam = ops.relu(ops.sum(ops.relu(grads) * features, axis=-1))
    elif method == "gradcam":
        weights = ops.mean(grads, axis=(1, 2))
    else:
        g2, g3 = ops.square(grads), grads * ops.square(grads)
        total = ops.sum(features, axis=(1, 2), keepdims=True)
        denominator = 2.0 * g2 + total * g3
        alpha = g2 / ops.where(ops.abs(denominator) > 1e-12, denominator, 1.0)
        weights = ops.sum(alpha * ops.relu(grads), axis=(1, 2))
    if weights is not None:
        cam = ops.relu(ops.einsum("bhwk,bk->bhw", features, weights))
    peak = ops.max(cam, axis=(1, 2), keepdims=True)
    cam = cam / ops.where(peak > 0, peak, 1.0)
    if size is not None:
        cam = ops.image.resize(cam[..., None], tuple(size), interpolation="bilinear")[..., 0]
    return ops.convert_to_numpy(ops.clip(cam, 0.0, 1.0))


def _encoder_split(model, layer: str | None):
    """(image -> feature maps, feature maps -> class probabilities) of a multi-task / classifier network."""
    encoder = model.encoder
    pool, dense = model.get_layer("class_pool"), model.get_layer("class")  # dropout is off at inference

    def head(p5):
        return dense(pool(p5))

    if layer in (None, "P5"):
        return (lambda x: encoder(x, training=False)[3]), head
    if layer in PYRAMID:
        cut = encoder.outputs[PYRAMID.index(layer)]
    else:
        try:
            cut = encoder.get_layer(layer).output
        except ValueError as exc:
            raise ValueError(f"the encoder has no layer {layer!r}") from exc
    if cut is encoder.outputs[3]:
        return (lambda x: encoder(x, training=False)[3]), head
    try:
        lower = keras.Model(encoder.inputs[0], cut)
        upper = keras.Model(cut, encoder.outputs[3])
    except ValueError as exc:
        raise ValueError(f"layer {layer!r} is not on the encoder's main path (the class depends on more than "
                         "its output); use a block output or P5") from exc
    return (lambda x: lower(x, training=False)), (lambda a: head(upper(a, training=False)))


def explain_classes(model, images: np.ndarray, class_index=None, method: str = "gradcam", layer: str | None = None,
                    contrast=None):
    """Heat maps (N, H, W) explaining `class_index` (default: each image's predicted class).

    `images` are float (N, H, W, 3) in [0, 1]; `layer` one level or levels joined by "+" (their
    maps averaged); `contrast` a class whose score is subtracted. Returns (maps, class probabilities (N, C)).
    """
    if "class" not in getattr(model, "tasks", ()):
        raise ValueError("Grad-CAM explains a class: the model needs a class head (multitask or classifier)")
    levels = layer.split("+") if layer and "+" in layer else [layer]
    x = ops.convert_to_tensor(images, "float32")
    maps, probabilities, target = [], None, class_index
    for level in levels:
        features_of, head = _encoder_split(model, level)
        features = features_of(x)
        if probabilities is None:
            probabilities = ops.convert_to_numpy(head(features))
            target = probabilities.argmax(axis=1) if class_index is None else class_index
        maps.append(class_activation_map(features, head, target, method, size=images.shape[1:3], contrast=contrast))
    return _normalise(np.mean(maps, axis=0)) if len(maps) > 1 else maps[0], probabilities


def _normalise(maps: np.ndarray) -> np.ndarray:
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.clip(maps / np.where(peak > 0, peak, 1.0), 0.0, 1.0)


def occlusion_sensitivity(model, images: np.ndarray, class_index, patch: int | None = None,
                          stride: int | None = None, fill: float = 0.0, batch_size: int = 32) -> np.ndarray:
    """How much each region's occlusion lowers the class probability (Zeiler & Fergus 2014), (N, H, W) in [0, 1].

    A square patch (default: 1/8 of the side) filled with `fill` (0: the scanner's background, so
    an occluded region reads as "no tissue here") slides with `stride`
    (default: half the patch); each pixel's map is the mean drop of the target class probability
    over the patches covering it. Forward passes only, so it runs on any backend.
    """
    n, h, w = images.shape[:3]
    patch = patch or max(4, h // 8)
    stride = stride or max(1, patch // 2)
    target = np.broadcast_to(np.asarray(class_index), (n,))
    base = np.asarray(model.predict_on_batch(images)["class"])[np.arange(n), target]
    maps = np.zeros((n, h, w), np.float64)
    counts = np.zeros((h, w), np.float64)
    boxes = [(y, x) for y in range(0, max(1, h - patch) + 1, stride) for x in range(0, max(1, w - patch) + 1, stride)]
    for y, x in boxes:
        counts[y:y + patch, x:x + patch] += 1
    for i in range(n):
        for start in range(0, len(boxes), batch_size):
            chunk = boxes[start:start + batch_size]
            batch = np.repeat(images[i:i + 1], len(chunk), axis=0)
            for j, (y, x) in enumerate(chunk):
                batch[j, y:y + patch, x:x + patch] = fill
            drop = base[i] - np.asarray(model.predict_on_batch(batch)["class"])[:, target[i]]
            for d, (y, x) in zip(drop, chunk):
                maps[i, y:y + patch, x:x + patch] += d
    maps = np.maximum(maps / np.maximum(counts, 1), 0.0)
    return _normalise(maps).astype(np.float32)


def integrated_gradients(model, images: np.ndarray, class_index, steps: int = 32, baseline: float = 0.0,
                         as_map: bool = True) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) of the class probability, as (N, H, W) maps in [0, 1].

    The path from a constant `baseline` image to the input is sampled at `steps` midpoints; the
    attribution (x - x') * mean gradient is summed in absolute value over channels (`as_map=False`:
    the signed attributions (N, H, W, C), which add up to p(x) - p(baseline)). The gradient uses
    the running backend's autodiff, the rest `keras.ops`.
    """
    n = len(images)
    target = np.broadcast_to(np.asarray(class_index), (n,))
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    x = images.astype(np.float32)
    reference = np.full_like(x, baseline)
    total = np.zeros_like(x)

    def score(batch, cls):
        probabilities = model(batch, training=False)["class"]
        return ops.sum(probabilities * ops.one_hot(ops.convert_to_tensor(cls, "int32"), probabilities.shape[-1]),
                       axis=-1)

    for i in range(n):
        path = reference[i][None] + alphas[:, None, None, None] * (x[i] - reference[i])[None]
        cls = np.full((steps,), target[i])
        grads = ops.convert_to_numpy(_gradient(lambda a: score(a, cls), ops.convert_to_tensor(path)))
        total[i] = grads.mean(axis=0)
    attribution = (x - reference) * total
    if not as_map:
        return attribution
    return _normalise(np.abs(attribution).sum(axis=-1)).astype(np.float32)
