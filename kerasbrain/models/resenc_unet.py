"""A residual-encoder U-Net in the manner of nnU-Net's ResEnc presets (Isensee et al. 2024).

nnU-Net's authors now recommend residual encoders as the default: each encoder stage is a stack of
residual basic blocks (conv -> norm -> act -> conv -> norm, plus a shortcut, then act), the first
block of a stage downsampling with stride 2 and a 1x1 projection on its shortcut; the decoder is
the plain U-Net's (`unet.segmentation_head`, one conv block per level). ResEnc-M for 3-D uses 1, 3, 4, 6, 6,
6 blocks per stage; with kerasbrain's default depth 4 (five stages) that is (1, 3, 4, 6, 6). Same
inputs, outputs, deep supervision and window rule as `UNet`, so it trains, predicts, exports and
serves wherever a U-Net does and ensembles with one (`models/ensemble.py`).
"""

from __future__ import annotations

import keras

from kerasbrain.models import layers as L
from kerasbrain.models.unet import PerAxisGeometry, segmentation_head
from kerasbrain.serialization import register
from kerasbrain.windows import level_kernels, stage_strides

RESENC_M_BLOCKS = (1, 3, 4, 6, 6, 6)


def _norm_act(x, norm, filters, act, name, activate=True):
    n = L.norm(norm, filters, name=f"{name}_norm")
    x = n(x) if n is not None else x
    return L.activation(act, name=f"{name}_act")(x) if activate else x


def residual_block(x, spatial_dims, filters, norm, act, name, strides=1, kernel_size=3):
    """conv -> norm -> act -> conv -> norm, plus the input (projected when the shape changes), then act."""
    use_bias = norm == "none"
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = L.conv(spatial_dims, filters, 1, strides=strides, name=f"{name}_proj", use_bias=use_bias)(x)
        shortcut = _norm_act(shortcut, norm, filters, act, f"{name}_proj", activate=False)
    x = L.conv(spatial_dims, filters, kernel_size, strides=strides, name=f"{name}_conv0", use_bias=use_bias)(x)
    x = _norm_act(x, norm, filters, act, f"{name}_0")
    x = L.conv(spatial_dims, filters, kernel_size, name=f"{name}_conv1", use_bias=use_bias)(x)
    x = _norm_act(x, norm, filters, act, f"{name}_1", activate=False)
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return L.activation(act, name=f"{name}_out")(x)


@register
class ResEncUNet(PerAxisGeometry, keras.Model):
    """U-Net whose encoder stages are stacks of residual blocks (nnU-Net ResEnc).

    Args: as `UNet`, plus
        blocks_per_stage: residual blocks in each of the depth + 1 encoder stages (None: ResEnc-M's).
    """

    def __init__(self, spatial_dims=3, in_channels=4, out_channels=3, base_filters=32, depth=4, max_filters=320,
                 blocks_per_stage=None, norm="instance", activation="leaky_relu", final_activation="sigmoid",
                 deep_supervision=0, upsample="pixel_shuffle", output_prior=None, strides=None, kernel_sizes=None,
                 name="resenc_unet", **kwargs):
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3. Received: spatial_dims={spatial_dims}")
        blocks = tuple(blocks_per_stage or RESENC_M_BLOCKS[:depth + 1])
        if len(blocks) != depth + 1 or min(blocks) < 1:
            raise ValueError(f"blocks_per_stage needs depth + 1 = {depth + 1} counts >= 1. Received: {blocks}")
        if not 0 <= deep_supervision < depth:
            raise ValueError(f"deep_supervision must be in [0, depth). Received: deep_supervision={deep_supervision}")
        stages = stage_strides(strides, depth, spatial_dims)
        kernels = level_kernels(kernel_sizes, depth, spatial_dims)
        inputs = keras.Input(shape=(None,) * spatial_dims + (in_channels,), name="image")
        x = L.conv(spatial_dims, base_filters, kernels[0], name="stem_conv", use_bias=norm == "none")(inputs)
        x = _norm_act(x, norm, base_filters, activation, "stem")
        skips = []
        for level, count in enumerate(blocks):
            filters = min(base_filters * 2**level, max_filters)
            for b in range(count):
                x = residual_block(x, spatial_dims, filters, norm, activation, name=f"stage{level}_block{b}",
                                   strides=stages[level - 1] if level > 0 and b == 0 else 1,
                                   kernel_size=kernels[level])
            skips.append(x)
        outputs = segmentation_head(skips, spatial_dims, norm, activation, deep_supervision, out_channels,
                                    final_activation, upsample, output_prior, stages, kernels)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.spatial_dims = spatial_dims
        self.in_channels, self.out_channels = in_channels, out_channels
        self.base_filters, self.depth, self.max_filters = base_filters, depth, max_filters
        self.blocks_per_stage = blocks
        self.norm, self.activation, self.final_activation = norm, activation, final_activation
        self.deep_supervision, self.upsample, self.output_prior = deep_supervision, upsample, output_prior
        self._keep_geometry(stages, kernels)

    def get_config(self):
        return {
            "spatial_dims": self.spatial_dims, "in_channels": self.in_channels, "out_channels": self.out_channels,
            "base_filters": self.base_filters, "depth": self.depth, "max_filters": self.max_filters,
            "blocks_per_stage": list(self.blocks_per_stage), "norm": self.norm, "activation": self.activation,
            "final_activation": self.final_activation, "deep_supervision": self.deep_supervision,
            "upsample": self.upsample, "output_prior": self.output_prior,
            **self._geometry_config(), "name": self.name,
            "trainable": self.trainable,
        }
