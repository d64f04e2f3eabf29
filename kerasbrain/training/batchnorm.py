"""Batch-norm statistics that match the trained weights, whatever the run length.

Batch normalisation normalises with the batch's own statistics in training and with moving
averages at inference. Keras updates the averages with momentum 0.99, so they forget their random
start only after several hundred steps: a 2-D U-Net trained for ~85 steps reached training Dice
0.85 but, in inference mode, predicted almost every pixel as tumour (held-out Dice 0.12), and
`fit`'s validation showed it too (val_loss 540 after the first epoch). Precise batch norm (Wu &
Johnson 2021, "Rethinking 'Batch' in BatchNorm") fixes this without touching the weights: after
training, run forward passes in training mode over a few batches and set each layer's averages to
the plain mean of the batch statistics it saw.

`BatchNormRecalibration` does this before every validation inside `fit`, so validation shows what
inference will do and the checkpoints hold the recalibrated statistics. Layers that do not train (a frozen encoder's) keep their statistics: they normalise
with them in training too, so training and inference already agree there.
"""

from __future__ import annotations

import keras


def batch_norm_layers(model) -> list:
    """Every trainable `BatchNormalization` layer in `model`, nested models included."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable:
                found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def _batch_statistics_fn(model, layers):
    """A compiled `images -> [(mean, variance) per layer]`: one training-mode pass with momentum 0.

    With momentum 0 a training-mode pass leaves each layer's batch statistics in its moving
    averages; the compiled function returns them (TensorFlow: `tf.function`; JAX: `jax.jit` over
    `stateless_call`). Eager forward passes cost several times more on a CPU.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def statistics(images):
            model(images, training=True)
            return [(layer.moving_mean.value, layer.moving_variance.value) for layer in layers]

        return statistics
    if backend == "jax":
        import jax

        variables = model.non_trainable_variables
        where = {id(v): i for i, v in enumerate(variables)}
        picks = [(where[id(layer.moving_mean)], where[id(layer.moving_variance)]) for layer in layers]

        @jax.jit
        def stateless(trainable, non_trainable, images):
            _, updated = model.stateless_call(trainable, non_trainable, images, training=True)
            return [(updated[i], updated[j]) for i, j in picks]

        return lambda images: stateless([v.value for v in model.trainable_variables],
                                        [v.value for v in variables], images)

    def eager(images):
        model(images, training=True)
        return [(layer.moving_mean, layer.moving_variance) for layer in layers]

    return eager


def recalibrate_batch_norm(model, batches, max_batches: int = 16, _cache: dict | None = None) -> int:
    """Set trainable BN layers' moving statistics to the mean over up to `max_batches` batches; returns how many.

    `batches` yields images or (images, targets) tuples. Each layer's moving mean (variance)
    becomes the plain mean of the batch means (variances) it saw.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    sums, done = None, 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        key = (id(model), tuple(id(layer) for layer in layers))
        cache = {} if _cache is None else _cache
        if key not in cache:
            cache[key] = _batch_statistics_fn(model, layers)
        statistics = cache[key]
        for batch in batches:
            if done >= max_batches:
                break
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            values = [(keras.ops.convert_to_numpy(m), keras.ops.convert_to_numpy(v)) for m, v in statistics(images)]
            sums = values if sums is None else [(a + m, b + v) for (a, b), (m, v) in zip(sums, values)]
            done += 1
        for layer, (mean, variance) in zip(layers, sums or []):
            layer.moving_mean.assign(mean / done)
            layer.moving_variance.assign(variance / done)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return done


class BatchNormRecalibration(keras.callbacks.Callback):
    """Recalibrate BN statistics over `data` before each validation and when training ends.

    Put it before the checkpoint callbacks so that what they save is recalibrated when there is no
    validation data (then it runs at each epoch end instead).

    Args:
        data: an iterable of batches (a `tf.data.Dataset`, a list of arrays) drawn from the
            training set without augmentation.
        max_batches: forward passes per recalibration.
    """

    def __init__(self, data, max_batches: int = 16):
        super().__init__()
        self.data = data
        self.max_batches = max_batches
        self._validating = False
        self._compiled = {}

    def _recalibrate(self):
        recalibrate_batch_norm(self.model, self.data, self.max_batches, self._compiled)

    def on_test_begin(self, logs=None):
        self._validating = True
        self._recalibrate()

    def on_epoch_end(self, epoch, logs=None):
        if not self._validating:
            self._recalibrate()


class ImageBatches:
    """Re-iterable [0, 1] float batches of uint8 images (unaugmented training images) for recalibration."""

    def __init__(self, images, batch_size: int):
        self.images, self.batch_size = images, batch_size

    def __iter__(self):
        for i in range(0, len(self.images), self.batch_size):
            yield self.images[i:i + self.batch_size].astype("float32") / 255.0
