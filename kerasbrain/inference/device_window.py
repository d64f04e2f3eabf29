"""Whole-volume sliding-window inference inside one compiled function (keras.ops; JAX and TensorFlow).

`sliding_window.sliding_window_predict` gathers windows, blends them and mirrors them in numpy on
the host, sending each batch of windows to the model and back. On a GPU those transfers and the
host-side blending cost more than the network itself (1.66 s for a BraTS-size volume of which the
model used 0.14 s per batch). Here the raw volume goes to the device once; normalisation, window
gathering, mirror test-time augmentation, Gaussian weighting and accumulation run in a compiled
loop over batches of windows, and only the blended probabilities come back.

The window grid and the Gaussian are the host path's (`window_starts`, `gaussian_importance`), so
both paths give the same result to float rounding. The grid is passed in as data, padded to whole
batches with windows of weight 0, so one compiled function serves every volume of a shape.
With `moments` the mirror members' mean of squares is blended too, as on the host path (and an
ensemble's moments model gives its members' moments itself: `sliding_window.mean_and_square`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasbrain.inference.model_io import output_channels
from kerasbrain.inference.sliding_window import (flips, gaussian_importance, mean_and_square, pad_to_window,
                                                 window_positions)
from kerasbrain.intensity import normalize_ops


def window_grid(shape, window, overlap: float, batch_size: int) -> np.ndarray:
    """(N, 4) int32 rows (x, y, z, valid) of window starts, padded with invalid rows to whole batches."""
    starts = window_positions(shape, window, overlap)
    padding = (-len(starts)) % batch_size
    rows = [tuple(s) + (1,) for s in starts] + [tuple(starts[0]) + (0,)] * padding
    return np.asarray(rows, dtype=np.int32)


def blend_windows(call, image, mean, std, grid, window, batch_size: int, out_channels: int, mirror: bool,
                  moments: bool = False):
    """keras.ops body: probabilities (*spatial, out_channels) of a raw (*spatial, C) volume.

    `call` maps a normalised window batch (B, *window, C) to (B, *window, out_channels); `grid`
    comes from `window_grid`. The volume must be at least as large as the window on every axis.
    With `moments` the result has 2 * out_channels: the members' mean, then their mean of squares.
    """
    dims = len(window)
    x = normalize_ops(image[None], mean[None], std[None])[0]

    def window_at(k):
        row = ops.slice(grid, [k, 0], [1, dims + 1])[0]
        return [row[a] for a in range(dims)], row[dims]

    acc, norm = accumulate_windows(call, x, window_at, ops.shape(grid)[0] // batch_size, window, batch_size,
                                   out_channels, mirror, moments)
    return acc / norm


def accumulate_windows(call, x, window_at, batches, window, batch_size: int, out_channels: int, mirror: bool,
                       moments: bool = False):
    """keras.ops: the Gaussian-weighted sums (acc, norm) of `batches` batches of windows of normalised `x`.

    `window_at(k)` gives window k's start corner (a list of scalars) and its weight (1, or 0 for a
    padding window); `batches` may be a traced scalar. acc has out_channels (x 2 with `moments`).
    """
    dims = len(window)
    channels = x.shape[-1]
    spatial = ops.shape(x)[:-1]
    weight = ops.convert_to_tensor(gaussian_importance(tuple(window))[..., None])
    blended = out_channels * (2 if moments else 1)
    acc = ops.zeros(tuple(spatial) + (blended,), "float32")
    norm = ops.zeros(tuple(spatial) + (1,), "float32")
    mirror_sets = flips(dims, mirror)

    def body(i, carry):
        acc, norm = carry
        placed = [window_at(i * batch_size + j) for j in range(batch_size)]
        windows = ops.stack([ops.slice(x, list(at) + [0], tuple(window) + (channels,)) for at, _ in placed])
        out, squares = 0.0, 0.0
        for axes in mirror_sets:
            ax = tuple(a + 1 for a in axes)
            pred = ops.cast(call(ops.flip(windows, ax) if ax else windows), "float32")
            pred = ops.flip(pred, ax) if ax else pred
            mean, square = mean_and_square(pred, out_channels)
            out = out + mean
            if moments:
                squares = squares + square
        out = out / len(mirror_sets)
        if moments:
            out = ops.concatenate([out, squares / len(mirror_sets)], axis=-1)
        for j, (at, valid) in enumerate(placed):
            w = weight * ops.cast(valid, "float32")
            at = list(at) + [0]
            acc = ops.slice_update(acc, at, ops.slice(acc, at, tuple(window) + (blended,)) + out[j] * w)
            norm = ops.slice_update(norm, at, ops.slice(norm, at, tuple(window) + (1,)) + w)
        return acc, norm

    return ops.fori_loop(0, batches, body, (acc, norm))


class DeviceSlidingWindow:
    """`(raw volume, mean, std) -> probabilities` for one model and inference settings, compiled once per shape.

    Args:
        model: a Keras segmentation model (the first output is used with deep supervision).
        window, overlap, batch_size, mirror: as `InferenceConfig`.
        moments: also blend the mirror members' mean of squares (2 * channels out).
        jit_compile: TensorFlow only; XLA (True) or TensorFlow's plain graph (False). JAX always uses XLA.
    """

    def __init__(self, model: keras.Model, window, overlap: float = 0.5, batch_size: int = 1, mirror: bool = False,
                 jit_compile: bool = True, moments: bool = False):
        self.model = model
        self.window = tuple(int(w) for w in window)
        self.overlap = overlap
        self.batch_size = int(batch_size)
        self.mirror = mirror
        self.moments = moments
        # an ensemble's moments model gives 2C channels: its members' mean and mean of squares
        self.out_channels = output_channels(model) // (2 if getattr(model, "gives_member_moments", False) else 1)
        self._fn = self._compile(jit_compile)

    def _first(self, out):
        return out[0] if isinstance(out, (list, tuple)) else out

    def _body(self, call, image, mean, std, grid):
        return blend_windows(call, image, mean, std, grid, self.window, self.batch_size, self.out_channels,
                             self.mirror, self.moments)

    def _compile(self, jit_compile: bool):
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            def fn(trainable, non_trainable, image, mean, std, grid):
                def call(x):
                    out, _ = self.model.stateless_call(trainable, non_trainable, x, training=False)
                    return self._first(out)

                return self._body(call, image, mean, std, grid)

            jitted = jax.jit(fn)
            return lambda *args: jitted([v.value for v in self.model.trainable_variables],
                                        [v.value for v in self.model.non_trainable_variables], *args)
        if backend == "tensorflow":
            import tensorflow as tf

            @tf.function(jit_compile=jit_compile, reduce_retracing=True)
            def fn(image, mean, std, grid):
                return self._body(lambda x: self._first(self.model(x, training=False)), image, mean, std, grid)

            return fn
        raise NotImplementedError(f"device sliding window supports the JAX and TensorFlow backends, not {backend}")

    def __call__(self, image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Probabilities (*spatial, out_channels) of a raw (*spatial, C) volume; smaller volumes are zero-padded."""
        spatial = image.shape[:-1]
        padded = pad_to_window(image, self.window)
        grid = window_grid(padded.shape[:-1], self.window, self.overlap, self.batch_size)
        out = self._fn(np.asarray(padded, np.float32), np.asarray(mean, np.float32), np.asarray(std, np.float32),
                       grid)
        return ops.convert_to_numpy(out)[tuple(slice(0, s) for s in spatial)]
