"""SimCLR (Chen et al. 2020): an image encoder learns from unlabelled slices by telling pairs apart.

The network is the 2-D families' encoder (`backbones.encoder_model`, ResNet18 by default), global
average pooling of its deepest level and a projection MLP. Training batches hold 2N images, the
two augmented views of N slices stacked (`data/contrastive.py`); `compute_loss` scores them with
NT-Xent, so `model.fit` trains it on every backend without a custom train step. Only the encoder
is kept afterwards: `load_encoder_weights` of the U-Net, classifier and multi-task networks
accepts this model's `.keras` file (or the `encoder.keras` a SimCLR run writes).
"""

from __future__ import annotations

import keras

from kerasbrain.losses.contrastive import nt_xent
from kerasbrain.models.backbones import ENCODERS, encoder_model
from kerasbrain.serialization import register


@register
class SimCLRNet(keras.Model):
    """Encoder + projection head trained with NT-Xent.

    Args:
        encoder: "resnet18", "resnet34", "resnet50" or "efficientnet_b0".
        projection_dims: widths of the projection MLP (hidden layers with ReLU, then the output).
        temperature: NT-Xent temperature.
        in_channels: image channels (3).
    """

    spatial_dims = 2

    def __init__(self, encoder="resnet18", projection_dims=(512, 128), temperature=0.5, in_channels=3, name=None,
                 **kwargs):
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}. Received: encoder={encoder!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature}")
        inputs = keras.Input(shape=(None, None, in_channels), name="image")
        enc = encoder_model(encoder, in_channels)
        x = keras.layers.GlobalAveragePooling2D(name="representation")(enc(inputs)[3])
        dims = list(projection_dims)
        for i, width in enumerate(dims[:-1]):
            x = keras.layers.Dense(width, activation="relu", name=f"projection_hidden{i}")(x)
        outputs = keras.layers.Dense(dims[-1], dtype="float32", name="projection")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name or f"simclr_{encoder}", **kwargs)
        self.encoder = enc
        self.encoder_name = encoder
        self.projection_dims = tuple(dims)
        self.temperature = temperature
        self.in_channels = in_channels

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """NT-Xent of the batch's two halves (the views); `y` is not used."""
        loss = nt_xent(y_pred, self.temperature)
        if self.losses:  # weight decay or other regularisers added by layers
            loss = loss + keras.ops.sum(self.losses)
        return loss

    def get_config(self):
        return {"encoder": self.encoder_name, "projection_dims": list(self.projection_dims),
                "temperature": self.temperature, "in_channels": self.in_channels, "name": self.name,
                "trainable": self.trainable}

    @property
    def size_divisor(self) -> int:
        return 32
