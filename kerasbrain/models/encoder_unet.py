"""2-D U-Net with a pretrained-style encoder (ResNet18/34/50, EfficientNet-B0), seed 004's model.

The encoder's pyramid features P1..P5 (strides 2 to 32) are the skips, as in the usual encoder
U-Nets (segmentation_models' stride-2 stem features included); the decoder (shared with `UNet`)
climbs back to full resolution, where a small conv block over the input image is the last skip so
borders stay sharp: the encoders' first features are at stride 2, and a decoder that sees only the
raw image at full resolution drew tumours about a pixel too wide (held-out precision 0.85-0.90,
nearly all false positives within 2 pixels of the true border; bench/race2d.py). Models saved
before these skips existed load without them (`stem_skip=False`, `image_skip_filters=0`). The
encoder is one nested model (`model.encoder`) so it can be frozen for stage 1 of fine-tuning and
initialised from a saved `.keras` encoder (e.g. SimCLR pretraining).
"""

from __future__ import annotations

import keras

from kerasbrain.models import layers as L
from kerasbrain.models.backbones import ENCODERS, build_encoder, copy_encoder_weights, normalise_input
from kerasbrain.models.unet import conv_block, decoder
from kerasbrain.serialization import register


@register
class EncoderUNet(keras.Model):
    """U-Net whose encoder is a keras-cv backbone built from explicit arguments, or a pretrained keras-hub one.

    Args:
        encoder: one of "resnet18", "resnet34", "resnet50", "efficientnet_b0".
        in_channels: image channels (3 for LGG: pre-contrast, FLAIR, post-contrast).
        out_channels: 1 for a binary tumour mask.
        decoder_filters: widths of the five decoder levels (1/16, 1/8, 1/4, 1/2, 1/1).
        norm: decoder normalisation ("batch", "group", "instance", "none").
        final_activation: "sigmoid" for a binary mask.
        upsample: "pixel_shuffle" (default) or "transpose"; see `kerasbrain.models.unet.UNet`.
        stem_skip: whether the decoder's stride-2 level takes the encoder's P1 (stem) features.
        image_skip_filters: width of the full-resolution conv block over the image that is the
            decoder's last skip (0: the raw image itself, as models saved before 2026-11-27).
        output_prior: the foreground probability every output starts at (None: 0.5); see
            `kerasbrain.models.layers.logits`. Initialisation only.
        hub_backbone: the architecture of a keras-hub backbone (`backbones.serialize_hub_backbone`) to use
            as the encoder instead of keras-cv's: what a pretrained encoder is built from
            (`with_pretrained_encoder`) and rebuilt from when the model is loaded, offline.
        input_normalization: "imagenet" standardises the [0, 1] image with ImageNet's mean and
            standard deviation inside the model, as ImageNet weights expect; "none" leaves it.
            Being a layer, it applies the same in training, evaluation, prediction and export.
    Input sides must be multiples of 32.
    """

    def __init__(self, encoder="resnet50", in_channels=3, out_channels=1, decoder_filters=(256, 128, 64, 32, 16),
                 norm="batch", final_activation="sigmoid", upsample="pixel_shuffle", stem_skip=True,
                 image_skip_filters=32, output_prior=None, hub_backbone=None, input_normalization="none", name=None,
                 **kwargs):
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}. Received: encoder={encoder!r}")
        if len(decoder_filters) != 5:
            raise ValueError(f"decoder_filters needs 5 widths. Received: decoder_filters={decoder_filters}")
        inputs = keras.Input(shape=(None, None, in_channels), name="image")
        image = normalise_input(inputs, input_normalization)
        enc = build_encoder(encoder, in_channels, (1, 2, 3, 4, 5) if stem_skip else (2, 3, 4, 5), hub_backbone)
        features = enc(image)
        p1, (p2, p3, p4, p5) = (features[0], features[1:]) if stem_skip else (None, features)
        p0 = (conv_block(image, 2, image_skip_filters, norm, "relu", name="image_skip") if image_skip_filters
              else image)
        x, _ = decoder(p5, [p4, p3, p2, p1, p0], 2, norm, "relu", filters=list(decoder_filters),
                       upsample=upsample)
        logits = L.logits(2, out_channels, output_prior)(x)
        probabilities = keras.layers.Activation(final_activation, dtype="float32", name="probabilities")(logits)
        super().__init__(inputs=inputs, outputs=probabilities, name=name or f"unet_{encoder}", **kwargs)
        self.encoder = enc
        self.encoder_name = encoder
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.decoder_filters = tuple(decoder_filters)
        self.norm = norm
        self.final_activation = final_activation
        self.upsample = upsample
        self.stem_skip = stem_skip
        self.image_skip_filters = image_skip_filters
        self.output_prior = output_prior
        self.hub_backbone = hub_backbone
        self.input_normalization = input_normalization

    @classmethod
    def with_pretrained_encoder(cls, encoder: str, weights: str, **kwargs) -> EncoderUNet:
        """A U-Net whose encoder starts from keras-hub weights ("imagenet", a preset folder, a weights file)
        and whose input is ImageNet-normalised, as those weights expect (`models/presets.py`)."""
        from kerasbrain.models.presets import with_pretrained_encoder

        return with_pretrained_encoder(cls, encoder, weights, **kwargs)

    def get_config(self):
        config = {"encoder": self.encoder_name, "in_channels": self.in_channels, "out_channels": self.out_channels,
                  "decoder_filters": list(self.decoder_filters), "norm": self.norm,
                  "final_activation": self.final_activation, "upsample": self.upsample, "stem_skip": self.stem_skip,
                  "image_skip_filters": self.image_skip_filters, "output_prior": self.output_prior, "name": self.name,
                  "trainable": self.trainable}
        if self.hub_backbone:  # models with keras-cv encoders keep the config they always had
            config.update(hub_backbone=self.hub_backbone, input_normalization=self.input_normalization)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**{"upsample": L.LEGACY_UPSAMPLE, "stem_skip": False, "image_skip_filters": 0, **config})

    spatial_dims = 2  # the one attribute every kerasbrain network answers; see kerasbrain.windows

    @property
    def size_divisor(self) -> int:
        """Every spatial side of an input must be a multiple of this (the encoder's stride 32)."""
        return 32

    def load_encoder_weights(self, path) -> None:
        """Start from a saved encoder (SimCLR's `encoder.keras`, or any kerasbrain model that has one)."""
        copy_encoder_weights(self.encoder, path, self.encoder_name)
