"""Learned x2 upsampling that is fast on every backend and device.

A transposed convolution with kernel 2 and stride 2 maps each input voxel to its own 2x2(x2)
output block: out[2i + a, 2j + b, 2k + c] = x[i, j, k] @ W[a, b, c] + bias. That is a 1x1(x1)
convolution to 2**d * filters channels followed by a depth-to-space rearrangement, and this layer
computes it that way. The two are exactly equal, but XLA lowers `Conv3DTranspose` as an
input-dilated convolution whose gradient takes ~100x the forward time on GPUs (jax-ml/jax#31662,
openxla/xla#34273); a matrix product and a transpose have no such slow path. On TensorFlow
without a GPU (no XLA there by default) the layer calls TensorFlow's own transposed-convolution
kernel, the path kerasbrain's CPU figures were measured with; everywhere else it takes the
matrix-product path.

The kernel is stored in `ConvNDTranspose`'s layout (2, 2[, 2], filters, in_channels) with the same
initializer, so weights move between the two layers unchanged (`with_upsampling` below uses this
to load models saved with transposed convolutions).
"""

from __future__ import annotations

import functools
import math

import keras
from keras import ops

from kerasbrain.serialization import register


@functools.cache
def native_transpose_is_faster() -> bool:
    """True on TensorFlow without a GPU, where TF's transposed-convolution kernel beats the rearrangement."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


@register
class PixelShuffleUpsampling(keras.layers.Layer):
    """Upsampling by `factor` per spatial axis with a learned kernel; `(B, *S, C) -> (B, *factor S, filters)`.

    Args:
        filters: output channels.
        spatial_dims: 2 or 3.
        use_bias: add a learned bias per output channel.
        kernel_initializer: as for `keras.layers.Conv3DTranspose` (the layout is the same).
        factor: per axis, 2 or 1 (an axis the matching encoder stage did not pool: thick slices).
    """

    def __init__(self, filters, spatial_dims=3, use_bias=True, kernel_initializer="he_normal", factor=2, **kwargs):
        super().__init__(**kwargs)
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3. Received: spatial_dims={spatial_dims}")
        self.factor = tuple(int(f) for f in factor) if isinstance(factor, (list, tuple)) else (int(factor),) * spatial_dims
        if len(self.factor) != spatial_dims or not all(f in (1, 2) for f in self.factor):
            raise ValueError(f"factor must be 1 or 2 per spatial axis. Received: factor={factor}")
        self.filters = int(filters)
        self.spatial_dims = spatial_dims
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=self.factor + (self.filters, in_channels),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, x):
        if native_transpose_is_faster():
            y = ops.conv_transpose(x, ops.cast(self.kernel, x.dtype), strides=self.factor, padding="same")
            return y + ops.cast(self.bias, y.dtype) if self.bias is not None else y
        return self.pixel_shuffle(x)

    def pixel_shuffle(self, x):
        """The 1x1 convolution + depth-to-space form (the XLA-friendly path)."""
        d, f, k = self.spatial_dims, self.filters, self.factor
        in_channels = self.kernel.shape[-1]
        # (2, 2, 2, f, c) -> (c, 2, 2, 2, f) -> (c, 8 f): column (a, b, c, o) feeds output block offset (a, b, c)
        w = ops.reshape(ops.transpose(self.kernel, (d + 1,) + tuple(range(d + 1))), (in_channels, math.prod(k) * f))
        y = ops.matmul(x, ops.cast(w, x.dtype))
        shape = ops.shape(x)
        batch, sizes = shape[0], shape[1:-1]
        y = ops.reshape(y, (batch, *sizes) + k + (f,))
        # (B, X, Y, Z, a, b, c, f) -> (B, X, a, Y, b, Z, c, f)
        perm = (0,) + tuple(ax for i in range(d) for ax in (1 + i, 1 + d + i)) + (2 * d + 1,)
        y = ops.reshape(ops.transpose(y, perm), (batch, *[n * s for n, s in zip(k, sizes)], f))
        if self.bias is not None:
            y = y + ops.cast(self.bias, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        spatial = [None if s is None else n * s for n, s in zip(self.factor, input_shape[1:-1])]
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "spatial_dims": self.spatial_dims, "use_bias": self.use_bias,
                       "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                       "factor": list(self.factor)})
        return config


def with_upsampling(model: keras.Model, kind: str = "pixel_shuffle") -> keras.Model:
    """The same network and weights with its upsampling layers of `kind` (`model` itself if already so).

    For kerasbrain U-Nets (anything with an `upsample` config key): a model saved with transposed
    convolutions is rebuilt with `PixelShuffleUpsampling` and predicts the same, faster.
    """
    config = model.get_config()
    if config.get("upsample", kind) == kind:
        return model
    twin = type(model).from_config({**config, "upsample": kind})
    twin.set_weights(model.get_weights())
    return twin
