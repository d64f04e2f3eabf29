"""Grad-CAM and Grad-CAM++ (Selvaraju et al. 2017; Chattopadhay et al. 2018) on any Keras backend.

The heat map of class c for feature maps A (B, h, w, K) is relu(sum_k w_k A_k), with w_k the
spatial mean of d y_c / d A_k (Grad-CAM) or the alpha-weighted sum of its positive part
(Grad-CAM++), normalised to [0, 1] per image and resized to the input. Everything but the one
gradient is `keras.ops`; the gradient is taken with the running backend's own autodiff
(`_gradient`), so the same code explains a model on TensorFlow and on JAX.

For the multi-task and classifier networks the feature maps are the encoder's: its deepest
pyramid level "P5" by default (the last convolutional stage, what Grad-CAM usually uses), or the
output of any layer of the encoder named by `layer` that the class head depends on only through
the encoder's main path (a block output such as "v2_stack_2_block2_out").
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

METHODS = ("gradcam", "gradcam++")


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


def class_activation_map(features, head, class_index, method: str = "gradcam", size=None):
    """Heat maps (B, H, W) in [0, 1] from feature maps (B, h, w, K) and `head`: features -> (B, C) scores.

    `class_index` is an int or one index per image; `size` (H, W) resizes the maps (bilinear).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")
    features = ops.convert_to_tensor(features, "float32")
    target = np.broadcast_to(np.asarray(class_index), (features.shape[0],))

    def score(a):  # each image's score of its target class
        scores = head(a)
        return ops.sum(scores * ops.one_hot(ops.convert_to_tensor(target, "int32"), scores.shape[-1]), axis=-1)

    grads = ops.convert_to_tensor(_gradient(score, features))
    if method == "gradcam":
        weights = ops.mean(grads, axis=(1, 2))
    else:
        g2, g3 = ops.square(grads), grads * ops.square(grads)
        total = ops.sum(features, axis=(1, 2), keepdims=True)
        denominator = 2.0 * g2 + total * g3
        alpha = g2 / ops.where(ops.abs(denominator) > 1e-12, denominator, 1.0)
        weights = ops.sum(alpha * ops.relu(grads), axis=(1, 2))
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


def explain_classes(model, images: np.ndarray, class_index=None, method: str = "gradcam", layer: str | None = None):
    """Heat maps (N, H, W) explaining `class_index` (default: each image's predicted class).

    `images` are float (N, H, W, 3) in [0, 1]; returns (maps, class probabilities (N, C)).
    """
    if "class" not in getattr(model, "tasks", ()):
        raise ValueError("Grad-CAM explains a class: the model needs a class head (multitask or classifier)")
    features_of, head = _encoder_split(model, layer)
    features = features_of(ops.convert_to_tensor(images, "float32"))
    probabilities = ops.convert_to_numpy(head(features))
    target = probabilities.argmax(axis=1) if class_index is None else class_index
    maps = class_activation_map(features, head, target, method, size=images.shape[1:3])
    return maps, probabilities
