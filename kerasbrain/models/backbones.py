"""Image encoders: keras-cv's for random weights, keras-hub's for pretrained ones. The one home of both.

Randomly initialised encoders are keras-cv backbones (the design card's package) built from
explicit architecture arguments, never presets, exactly as every run so far saved them: a `.keras`
file written before pretrained encoders existed loads into the same layers and predicts the same.
ImageNet-pretrained encoders come from keras-hub, keras-cv's maintained successor, whose presets
carry the weights (keras-cv 0.9's preset downloads are frozen); their architecture is recorded in
the model's config (`serialize_hub_backbone`), so a saved model rebuilds them offline and only the
first download needs a network (`models/presets.py`). Both expose pyramid features P1..P5
(strides 2, 4, 8, 16, 32) for a U-Net decoder; classifiers and SimCLR take P2..P5. This is the
only module that imports keras-cv or builds keras-hub backbones.
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


# --- keras-hub (pretrained) -------------------------------------------------------------------------
#: The keras-hub ImageNet-1k preset of each encoder; keras-hub has no plain ResNet-34.
IMAGENET_PRESETS = {"resnet18": "resnet_18_imagenet", "resnet50": "resnet_50_imagenet",
                    "efficientnet_b0": "efficientnet_b0_ra_imagenet"}
#: What ImageNet weights expect of an image in [0, 1]: (x - mean) / std per RGB channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The presets' architectures, as keras-hub's own conversion writes them (used to check that a local
# preset folder or weights file is the named encoder, and to build one in the tests).
_HUB_RESNET = {
    "resnet18": dict(stackwise_num_blocks=[2, 2, 2, 2], block_type="basic_block"),
    "resnet50": dict(stackwise_num_blocks=[3, 4, 6, 3], block_type="bottleneck_block"),
}
_HUB_EFFICIENTNET_B0 = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3], stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192], stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6], stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_block_types=["v1"] * 7, stackwise_width_coefficients=[1.0] * 7, stackwise_depth_coefficients=[1.0] * 7,
    stackwise_squeeze_and_excite_ratios=[0.25] * 7, min_depth=None, include_stem_padding=True,
    use_depth_divisor_as_min_depth=True, cap_round_filter_decrease=True, stem_conv_padding="valid",
    batch_norm_momentum=0.9, batch_norm_epsilon=1e-5, dropout=0, projection_activation=None,
)


def hub_backbone(name: str):
    """A keras-hub backbone of the preset's architecture for `name`, random weights (no download)."""
    import keras_hub

    if name in _HUB_RESNET:
        return keras_hub.models.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[7],
                                               stackwise_num_filters=[64, 128, 256, 512],
                                               stackwise_num_strides=[1, 2, 2, 2], use_pre_activation=False,
                                               image_shape=(None, None, 3), **_HUB_RESNET[name])
    if name == "efficientnet_b0":
        return keras_hub.models.EfficientNetBackbone(input_shape=(None, None, 3), **_HUB_EFFICIENTNET_B0)
    raise ValueError(f"no pretrained {name!r} in keras-hub; pretrained encoders: {sorted(IMAGENET_PRESETS)}")


def same_architecture(backbone, name: str) -> bool:
    """Whether a keras-hub backbone (a downloaded or local preset) is the architecture of encoder `name`."""
    reference = hub_backbone(name)
    keys = set(_HUB_RESNET.get(name, _HUB_EFFICIENTNET_B0)) | {"stackwise_num_filters", "input_conv_filters"}
    mine, theirs = reference.get_config(), backbone.get_config()
    return type(backbone) is type(reference) and all(mine.get(k) == theirs.get(k) for k in keys)


def serialize_hub_backbone(backbone) -> dict:
    """The architecture of a keras-hub backbone as plain config (what a saved model keeps)."""
    return keras.saving.serialize_keras_object(backbone)


def hub_encoder_model(backbone_config: dict, levels=(2, 3, 4, 5), name: str = "encoder") -> keras.Model:
    """image -> [P<level>] of a keras-hub backbone rebuilt from `serialize_hub_backbone`'s config (random weights).

    keras-hub lists P2..P5 for ResNets; their stride-2 level is the stem's activation, as in keras-cv.
    """
    import keras_hub  # noqa: F401  (registers keras-hub's classes for deserialisation)

    backbone = keras.saving.deserialize_keras_object(backbone_config)
    outputs = {**backbone.pyramid_outputs}
    if "P1" not in outputs:
        outputs["P1"] = backbone.get_layer(_RESNET_P1).output
    return keras.Model(backbone.inputs[0], [outputs[f"P{i}"] for i in levels], name=name)


def build_encoder(name: str, in_channels: int, levels, hub_backbone: dict | None = None) -> keras.Model:
    """A network's encoder: keras-hub's from a recorded architecture, else keras-cv's (random weights)."""
    if hub_backbone:
        return hub_encoder_model(hub_backbone, levels, name=f"{name}_encoder")
    return encoder_model(name, in_channels, levels)


def normalise_input(inputs, input_normalization: str):
    """The image the encoder sees: as given ("none"), or ImageNet-standardised ("imagenet") by a layer."""
    if input_normalization == "none":
        return inputs
    if input_normalization != "imagenet":
        raise ValueError(f"input_normalization must be 'none' or 'imagenet'. Received: {input_normalization!r}")
    return keras.layers.Normalization(mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD],
                                      name="imagenet_normalization")(inputs)


def copy_hub_weights(backbone, encoder: keras.Model) -> None:
    """Copy a keras-hub backbone's weights into an encoder built by `hub_encoder_model`, layer by name."""
    for layer in encoder.layers:
        if layer.weights:
            layer.set_weights(backbone.get_layer(layer.name).get_weights())


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
