"""Layer factories keyed by spatial dimensionality, so 2-D and 3-D networks share one code path."""

from __future__ import annotations

import keras

_CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_CONV_T = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}
NORMS = ("instance", "group", "batch", "none")


def conv(spatial_dims: int, filters: int, kernel_size=3, strides=1, name=None, use_bias=True):
    return _CONV[spatial_dims](filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                               kernel_initializer="he_normal", name=name)


def conv_transpose(spatial_dims: int, filters: int, name=None):
    return _CONV_T[spatial_dims](filters, 2, strides=2, padding="same", kernel_initializer="he_normal", name=name)


def norm(kind: str, filters: int, name=None):
    """Instance norm is group norm with one channel per group (nnU-Net's default for MRI)."""
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=filters, epsilon=1e-5, name=name)
    if kind == "group":
        return keras.layers.GroupNormalization(groups=min(8, filters), epsilon=1e-5, name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "none":
        return None
    raise ValueError(f"norm must be one of {NORMS}. Received: norm={kind!r}")


def activation(kind: str, name=None):
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01, name=name)
    return keras.layers.Activation(kind, name=name)
