"""Layer factories keyed by spatial dimensionality, so 2-D and 3-D networks share one code path."""

from __future__ import annotations

import math

import keras

from kerasbrain.models.upsampling import PixelShuffleUpsampling

_CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_CONV_T = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}
NORMS = ("instance", "group", "batch", "none")


def conv(spatial_dims: int, filters: int, kernel_size=3, strides=1, name=None, use_bias=True,
         bias_initializer="zeros"):
    return _CONV[spatial_dims](filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                               kernel_initializer="he_normal", bias_initializer=bias_initializer, name=name)


def logits(spatial_dims: int, out_channels: int, output_prior=None, name="logits"):
    """The 1 x 1 convolution that gives a sigmoid head its logits.

    `output_prior` (a probability, or None for a zero bias) starts every output at that foreground
    probability: the bias is initialised to log(p / (1 - p)), RetinaNet's prior initialisation (Lin
    et al. 2017). A zero bias starts every pixel at 0.5; Adam moves a weight by about the learning
    rate per step, so a few hundred steps leave the background near 0.03 rather than 0, a soft
    mass that dwarfs a small tumour in the soft Dice loss.
    """
    if output_prior is None:
        return conv(spatial_dims, out_channels, 1, name=name)
    if not 0.0 < output_prior < 1.0:
        raise ValueError(f"output_prior must be a probability in (0, 1) or None. Received: {output_prior=}")
    bias = math.log(output_prior / (1.0 - output_prior))
    return conv(spatial_dims, out_channels, 1, name=name, bias_initializer=keras.initializers.Constant(bias))


UPSAMPLES = ("pixel_shuffle", "transpose")
#: What a saved U-Net config without an `upsample` key was built with (files from before the choice existed).
LEGACY_UPSAMPLE = "transpose"


def upsample(spatial_dims: int, filters: int, kind: str = "pixel_shuffle", name=None, factor=2):
    """Learned upsampling by `factor` (2, or 1 or 2 per axis): `PixelShuffleUpsampling` (fast
    everywhere) or the equivalent transposed convolution.

    Both hold the same weights and compute the same function; "transpose" is kept so models saved
    before `PixelShuffleUpsampling` existed rebuild layer for layer.
    """
    if kind == "pixel_shuffle":
        return PixelShuffleUpsampling(filters, spatial_dims, kernel_initializer="he_normal", name=name, factor=factor)
    if kind == "transpose":
        return _CONV_T[spatial_dims](filters, factor, strides=factor, padding="same", kernel_initializer="he_normal",
                                     name=name)
    raise ValueError(f"upsample must be one of {UPSAMPLES}. Received: upsample={kind!r}")


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
