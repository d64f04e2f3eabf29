"""Multi-task ResNet (seeds 000 / 001): one encoder, a 4-way class head and a U-Net mask decoder.

The encoder is the 2-D encoder U-Net's (`backbones.encoder_model`: keras-cv ResNet18/34/50 or
EfficientNet-B0 from explicit arguments), so SimCLR-pretrained encoders load into either. The
class head is global average pooling, dropout and a softmax layer; the decoder is the U-Net
decoder shared with `UNet` and `EncoderUNet`. One functional model, outputs named by task:
`{"class": (B, num_classes) probabilities, "mask": (B, H, W, 1) probabilities}`. With
`tasks=("class",)` it is the single-task classifier baseline, with `("mask",)` the segmenter.
"""

from __future__ import annotations

import keras

from kerasbrain.models import layers as L
from kerasbrain.models.backbones import ENCODERS, build_encoder, copy_encoder_weights, normalise_input
from kerasbrain.models.unet import decoder
from kerasbrain.serialization import register

TASKS = ("class", "mask")


@register
class MultiTaskNet(keras.Model):
    """Shared-encoder classifier + segmenter.

    Args:
        encoder: "resnet18", "resnet34", "resnet50" or "efficientnet_b0".
        num_classes: classes of the softmax head (4: glioma, meningioma, no tumour, pituitary).
        tasks: which heads to build, a subset of ("class", "mask").
        in_channels: image channels (3; grayscale images are repeated to RGB by the readers).
        decoder_filters: widths of the five decoder levels (1/16 ... 1/1).
        dropout: dropout rate before the class layer.
        norm: decoder normalisation ("batch", "group", "instance", "none").
        calibration_temperature: the temperature already folded into the class layer's weights by
            `evaluation.calibration.fold_temperature` (None: not calibrated); a record, not applied again.
        hub_backbone, input_normalization: a pretrained keras-hub encoder and the ImageNet
            standardisation it expects, as `EncoderUNet`'s (`with_pretrained_encoder`).
    Input sides must be multiples of 32; pixels are in [0, 1].
    """

    spatial_dims = 2

    def __init__(self, encoder="resnet18", num_classes=4, tasks=TASKS, in_channels=3,
                 decoder_filters=(256, 128, 64, 32, 16), dropout=0.3, norm="batch", upsample="pixel_shuffle",
                 calibration_temperature=None, hub_backbone=None, input_normalization="none", name=None, **kwargs):
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}. Received: encoder={encoder!r}")
        tasks = tuple(tasks)
        if not tasks or set(tasks) - set(TASKS):
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks}")
        inputs = keras.Input(shape=(None, None, in_channels), name="image")
        image = normalise_input(inputs, input_normalization)
        enc = build_encoder(encoder, in_channels, (2, 3, 4, 5), hub_backbone)
        p2, p3, p4, p5 = enc(image)
        outputs = {}
        if "class" in tasks:
            x = keras.layers.GlobalAveragePooling2D(name="class_pool")(p5)
            x = keras.layers.Dropout(dropout, name="class_dropout")(x)
            outputs["class"] = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="class")(x)
        if "mask" in tasks:
            x, _ = decoder(p5, [p4, p3, p2, None, image], 2, norm, "relu", filters=list(decoder_filters),
                           upsample=upsample)
            logits = L.conv(2, 1, 1, name="mask_logits")(x)
            outputs["mask"] = keras.layers.Activation("sigmoid", dtype="float32", name="mask")(logits)
        super().__init__(inputs=inputs, outputs=outputs, name=name or f"multitask_{encoder}", **kwargs)
        self.encoder = enc
        self.encoder_name = encoder
        self.num_classes = num_classes
        self.tasks = tasks
        self.in_channels = in_channels
        self.decoder_filters = tuple(decoder_filters)
        self.dropout = dropout
        self.norm = norm
        self.upsample = upsample
        self.calibration_temperature = calibration_temperature
        self.hub_backbone = hub_backbone
        self.input_normalization = input_normalization

    @classmethod
    def with_pretrained_encoder(cls, encoder: str, weights: str, **kwargs) -> MultiTaskNet:
        """As `EncoderUNet.with_pretrained_encoder`: keras-hub weights, ImageNet-normalised input."""
        from kerasbrain.models.presets import with_pretrained_encoder

        return with_pretrained_encoder(cls, encoder, weights, **kwargs)

    def get_config(self):
        config = {"encoder": self.encoder_name, "num_classes": self.num_classes, "tasks": list(self.tasks),
                  "in_channels": self.in_channels, "decoder_filters": list(self.decoder_filters),
                  "dropout": self.dropout, "norm": self.norm, "upsample": self.upsample,
                  "calibration_temperature": self.calibration_temperature, "name": self.name,
                  "trainable": self.trainable}
        if self.hub_backbone:  # models with keras-cv encoders keep the config they always had
            config.update(hub_backbone=self.hub_backbone, input_normalization=self.input_normalization)
        return config

    @property
    def size_divisor(self) -> int:
        """Every spatial side of an input must be a multiple of this (the encoder's stride 32)."""
        return 32

    def load_encoder_weights(self, path) -> None:
        """Start from a saved encoder (SimCLR's `encoder.keras`, or any kerasbrain model that has one)."""
        copy_encoder_weights(self.encoder, path, self.encoder_name)
