"""Seed 003's label-channel network answering in BraTS regions, so everything downstream stays one way.

Seed 003 trains one sigmoid per label (edema, non-enhancing/necrotic core, enhancing: exclusive),
where kerasbrain's networks answer the nested regions WT, TC and ET. With `[model] targets =
"labels"` training fits the label channels; the run's checkpoints save this wrapper, whose output
is each region's probability as the largest of its labels' (WT = max(ED, NCR, ET), TC = max(NCR,
ET), ET), so a region is above 0.5 exactly when one of its labels is, as seed 003 thresholds each
channel. Prediction, evaluation, export, serving and the app then read it like any region network.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasbrain.data.labels import REGION_FROM_CHANNELS, REGIONS
from kerasbrain.serialization import register


@register
class LabelChannelsToRegions(keras.layers.Layer):
    """(..., 3) label-channel probabilities -> (..., 3) WT/TC/ET probabilities (the largest member)."""

    def call(self, labels):
        return ops.stack([ops.max(ops.take(labels, list(REGION_FROM_CHANNELS[r]), axis=-1), axis=-1)
                          for r in REGIONS], axis=-1)


@register
class RegionsFromLabels(keras.Model):
    """`network` (label channels, optionally with deep-supervision outputs) answering WT/TC/ET."""

    def __init__(self, network, name=None, **kwargs):
        if isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        inputs = keras.Input(shape=network.inputs[0].shape[1:], name="image")
        outputs = network(inputs)
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        outputs = LabelChannelsToRegions(name="regions", dtype="float32")(outputs)
        super().__init__(inputs=inputs, outputs=outputs, name=name or f"{network.name}_regions", **kwargs)
        self.network = network

    @property
    def spatial_dims(self) -> int:
        return int(self.network.spatial_dims)

    @property
    def size_divisor(self) -> int:
        from kerasbrain.windows import size_divisor

        return size_divisor(self.network)

    def get_config(self):
        return {"network": keras.saving.serialize_keras_object(self.network), "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
