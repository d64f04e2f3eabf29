"""Image encoders from keras-cv, built from explicit architecture arguments (never presets).

keras-cv's presets and alias classes download configs or weights, which no offline machine can
do, so each encoder is spelled out here with the published architecture's numbers. This is the
only module that imports keras-cv. Each encoder exposes its pyramid features P1..P5 (strides 2,
4, 8, 16, 32) for a U-Net decoder; classifiers and SimCLR take P2..P5.
"""

from __future__ import annotations

import keras

# ResNet (He et al. 2016): basic blocks for 18/34, bottleneck blocks for 50.
_RESNET = {
    "resnet18": dict(stackwise_blocks=[2, 2, 2, 2], block_type="basic_block"),
    "resnet34": dict(stackwise_blocks=[3, 4, 6, 3], block_type="basic_block"),
    "resnet50": dict(stackwise_blocks=[3, 4, 6, 3], block_type="block"),
}
# EfficientNet-B0 (Tan & Le 2019): width 1.0, depth 1.0, seven MBConv stages.
_EFFICIENTNET_B0 = dict(
    width_coefficient=1.0, depth_coefficient=1.0,
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3], stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192], stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6], stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_squeeze_and_excite_ratios=[0.25] * 7,
)
ENCODERS = tuple(_RESNET) + ("efficientnet_b0",)


def build_backbone(name: str, in_channels: int = 3):
    """The keras-cv backbone model for `name` (random weights)."""
    import keras_cv

    shape = (None, None, in_channels)
    if name in _RESNET:
        return keras_cv.models.ResNetBackbone(stackwise_filters=[64, 128, 256, 512], stackwise_strides=[1, 2, 2, 2],
                                              include_rescaling=False, input_shape=shape, **_RESNET[name])
    if name == "efficientnet_b0":
        return keras_cv.models.EfficientNetV1Backbone(include_rescaling=False, input_shape=shape,
                                                      **_EFFICIENTNET_B0)
    raise ValueError(f"encoder must be one of {ENCODERS}. Received: encoder={name!r}")


#: keras-cv's ResNets list P2..P5; their stride-2 level is the stem's activation (EfficientNet lists P1).
_RESNET_P1 = "conv1_relu"


def pyramid_features(backbone, levels=(2, 3, 4, 5)) -> list:
    """Feature maps P<level> of a keras-cv backbone (stride 2**level), shallow to deep."""
    names = {"P1": _RESNET_P1, **backbone.pyramid_level_inputs}
    return [backbone.get_layer(names[f"P{i}"]).output for i in levels]


def encoder_model(name: str, in_channels: int = 3, levels=(2, 3, 4, 5)) -> keras.Model:
    """A functional model image -> [P<level> for level in levels], the unit the U-Net freezes or loads weights into.

    The levels change only what the model returns, never its layers or weights, so a saved encoder
    loads into one built with other levels (`copy_encoder_weights`).
    """
    backbone = build_backbone(name, in_channels)
    return keras.Model(backbone.inputs[0], pyramid_features(backbone, levels), name=f"{name}_encoder")


def copy_encoder_weights(encoder: keras.Model, path, encoder_name: str) -> None:
    """Load `path` (a saved encoder, or any kerasbrain model with an `encoder`) into `encoder`.

    What the SimCLR run's `encoder.keras`, a SimCLR checkpoint, a trained U-Net, classifier or
    multi-task network can all give: the weights of the same encoder architecture.
    """
    import kerasbrain.models  # noqa: F401  (registers kerasbrain's classes for loading)
    from kerasbrain.serialization import check_archive

    check_archive(path)
    try:
        source = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot be read as a .keras model ({exc})") from exc
    source = getattr(source, "encoder", source)
    mine, theirs = encoder.get_weights(), source.get_weights()
    if [w.shape for w in mine] != [w.shape for w in theirs]:
        raise ValueError(f"{path}: its encoder weights do not match a {encoder_name} encoder")
    encoder.set_weights(theirs)
