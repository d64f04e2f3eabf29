"""A U-Net for 2-D slices and 3-D volumes from one builder (Ronneberger 2015, Cicek 2016).

Built as a functional graph inside `keras.Model.__init__` (the keras-hub pattern): the
constructor arguments are the config, so a `.keras` file rebuilds the exact network. Spatial
input dimensions are left open, so the same model trains on patches and predicts on any window
whose sides are multiples of 2**depth.
"""

from __future__ import annotations

import keras

from kerasbrain.models import layers as L
from kerasbrain.serialization import register
from kerasbrain.windows import level_kernels, stage_strides, stride_divisors


def conv_block(x, spatial_dims, filters, norm, act, name, strides=1, kernel_size=3):
    """Two (conv -> norm -> activation) units; the first may downsample with `strides`."""
    for i, s in enumerate((strides, 1)):
        use_bias = norm == "none"
        x = L.conv(spatial_dims, filters, kernel_size, strides=s, name=f"{name}_conv{i}", use_bias=use_bias)(x)
        n = L.norm(norm, filters, name=f"{name}_norm{i}")
        if n is not None:
            x = n(x)
        x = L.activation(act, name=f"{name}_act{i}")(x)
    return x


def decoder(x, skips, spatial_dims, norm, act, deep_supervision_heads=0, out_channels=1,
            final_activation="sigmoid", name="decoder", filters=None, upsample="pixel_shuffle", output_prior=None,
            factors=None, kernels=None):
    """U-Net decoder: upsample x2, concatenate the matching skip, conv block; optional deep supervision.

    `skips` run from the deepest to the shallowest (None: a level without a skip); `filters` gives
    each level's width (default: the skip's); `upsample` picks the x2 upsampling layer (see
    `kerasbrain.models.layers.upsample`); `output_prior` initialises the auxiliary heads' bias
    (`kerasbrain.models.layers.logits`); `factors` each level's upsampling per axis (default 2
    everywhere; 1 on an axis its encoder stage did not pool), `kernels` each level's convolution
    kernel (default 3). Returns the last feature map and the auxiliary outputs (from coarse to fine,
    excluding the final level).
    """
    aux = []
    for level, skip in enumerate(skips):
        width = filters[level] if filters is not None else skip.shape[-1]
        factor = factors[level] if factors is not None else 2
        x = L.upsample(spatial_dims, width, upsample, name=f"{name}{level}_up", factor=factor)(x)
        if skip is not None:
            x = keras.layers.Concatenate(name=f"{name}{level}_concat")([x, skip])
        x = conv_block(x, spatial_dims, width, norm, act, name=f"{name}{level}",
                       kernel_size=kernels[level] if kernels is not None else 3)
        remaining = len(skips) - 1 - level
        if 0 < remaining <= deep_supervision_heads:
            head = L.logits(spatial_dims, out_channels, output_prior, name=f"aux{remaining}_logits")(x)
            aux.append(keras.layers.Activation(final_activation, dtype="float32", name=f"aux{remaining}")(head))
    return x, aux


def segmentation_head(skips, spatial_dims, norm, act, deep_supervision, out_channels, final_activation, upsample,
                      output_prior, strides=None, kernels=None):
    """The decoder over encoder features `skips` (shallow to deep) and the output layer(s): the probabilities,
    or [probabilities, 1/2, 1/4, ...] with deep supervision. Shared by every U-Net-shaped network;
    `strides`: each encoder stage's pooling per axis (shallow to deep), undone in reverse; `kernels`:
    each level's kernel (shallow to deep), the decoder level using its encoder level's."""
    x, aux = decoder(skips[-1], skips[-2::-1], spatial_dims, norm, act, deep_supervision, out_channels,
                     final_activation, upsample=upsample, output_prior=output_prior,
                     factors=None if strides is None else list(strides)[::-1],
                     kernels=None if kernels is None else list(kernels[:-1])[::-1])
    logits = L.logits(spatial_dims, out_channels, output_prior)(x)
    probabilities = keras.layers.Activation(final_activation, dtype="float32", name="probabilities")(logits)
    return [probabilities] + aux[::-1] if deep_supervision else probabilities


class PerAxisGeometry:
    """What the 3-D U-Nets share about their per-axis strides and kernels: keeping them (None where
    they are the defaults, so configs of ordinary networks stay as they were), their config entries,
    and the divisors input sides must be multiples of."""

    def _keep_geometry(self, stages, kernels):
        self.strides = None if stages == stage_strides(None, self.depth, self.spatial_dims) else stages
        self.kernel_sizes = None if kernels == level_kernels(None, self.depth, self.spatial_dims) else kernels

    def _geometry_config(self) -> dict:
        return {"strides": None if self.strides is None else [list(s) for s in self.strides],
                "kernel_sizes": None if self.kernel_sizes is None else [list(k) for k in self.kernel_sizes]}

    @property
    def size_divisor(self) -> int:
        """Every spatial side of an input may be a multiple of this (the largest of `axis_divisors`)."""
        return max(self.axis_divisors)

    @property
    def axis_divisors(self) -> tuple[int, ...]:
        """Per axis, the multiple every input side must be."""
        return stride_divisors(stage_strides(self.strides, self.depth, self.spatial_dims))


@register
class UNet(PerAxisGeometry, keras.Model):
    """U-Net with configurable depth, width, normalisation and optional deep supervision.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (4 MRI modalities for BraTS).
        out_channels: output channels (3 overlapping regions WT/TC/ET for BraTS, 1 for a binary mask).
        base_filters: filters at full resolution; doubled per level up to `max_filters`.
        depth: number of downsamplings; window sides must be multiples of 2**depth.
        norm: "instance", "group", "batch" or "none".
        activation: "leaky_relu" (nnU-Net), "relu", ...
        final_activation: "sigmoid" for independent (overlapping) regions, "softmax" for exclusive labels.
        deep_supervision: number of extra lower-resolution outputs (0 = off). When on, the model
            returns a list [full, 1/2, 1/4, ...]; `kerasbrain.training` builds the matching targets.
        upsample: "pixel_shuffle" (default; fast on every device) or "transpose" (transposed
            convolutions, the same function and weights; what models saved before the choice used).
        output_prior: sigmoid outputs only: the foreground probability every output starts at
            (None: a zero bias, 0.5); see `kerasbrain.models.layers.logits`. Initialisation only.
        strides: each pooling's stride per axis, 1 or 2 (None: 2 everywhere); an axis of thick
            slices is left unpooled at the first levels, as nnU-Net does. Sides must then be
            multiples of `axis_divisors`, the product per axis.
        kernel_sizes: each level's convolution kernel per axis, 1 or 3 (None: 3 everywhere); nnU-Net
            keeps kernels 1 voxel wide along slices too thick to mix with their neighbours yet.
    """

    def __init__(self, spatial_dims=3, in_channels=4, out_channels=3, base_filters=16, depth=4, max_filters=320,
                 norm="instance", activation="leaky_relu", final_activation="sigmoid", deep_supervision=0,
                 upsample="pixel_shuffle", output_prior=None, strides=None, kernel_sizes=None, name="unet",
                 **kwargs):
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3. Received: spatial_dims={spatial_dims}")
        if not 0 <= deep_supervision < depth:
            raise ValueError(f"deep_supervision must be in [0, depth). Received: deep_supervision={deep_supervision}")
        if output_prior is not None and final_activation != "sigmoid":
            raise ValueError(f"output_prior needs sigmoid outputs. Received: final_activation={final_activation!r}")
        stages = stage_strides(strides, depth, spatial_dims)
        kernels = level_kernels(kernel_sizes, depth, spatial_dims)
        inputs = keras.Input(shape=(None,) * spatial_dims + (in_channels,), name="image")
        x, skips = inputs, []
        for level in range(depth + 1):
            filters = min(base_filters * 2**level, max_filters)
            x = conv_block(x, spatial_dims, filters, norm, activation, name=f"encoder{level}",
                           strides=1 if level == 0 else stages[level - 1], kernel_size=kernels[level])
            skips.append(x)
        outputs = segmentation_head(skips, spatial_dims, norm, activation, deep_supervision, out_channels,
                                    final_activation, upsample, output_prior, stages, kernels)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_filters = base_filters
        self.depth = depth
        self.max_filters = max_filters
        self.norm = norm
        self.activation = activation
        self.final_activation = final_activation
        self.deep_supervision = deep_supervision
        self.upsample = upsample
        self.output_prior = output_prior
        self._keep_geometry(stages, kernels)

    def get_config(self):
        return {
            "spatial_dims": self.spatial_dims, "in_channels": self.in_channels, "out_channels": self.out_channels,
            "base_filters": self.base_filters, "depth": self.depth, "max_filters": self.max_filters,
            "norm": self.norm, "activation": self.activation, "final_activation": self.final_activation,
            "deep_supervision": self.deep_supervision, "upsample": self.upsample, "output_prior": self.output_prior,
            **self._geometry_config(), "name": self.name, "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**{"upsample": L.LEGACY_UPSAMPLE, **config})
