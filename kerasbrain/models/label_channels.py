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

from kerasbrain.serialization import register


#: WT, TC, ET as the label channels (ED, NCR, ET) they hold; `data/labels.py`'s REGION_FROM_CHANNELS
#: says the same for the data side, and a test checks that the two agree.
REGION_GROUPS = ((0, 1, 2), (1, 2), (2,))


@register
class LabelChannelsToRegions(keras.layers.Layer):
    """(..., L) label-channel probabilities -> one channel per group: the largest of its members."""

    def __init__(self, groups=REGION_GROUPS, **kwargs):
        super().__init__(**kwargs)
        self.groups = tuple(tuple(int(i) for i in g) for g in groups)

    def call(self, labels):
        return ops.stack([ops.max(ops.take(labels, list(g), axis=-1), axis=-1) for g in self.groups], axis=-1)

    def get_config(self):
        return {**super().get_config(), "groups": [list(g) for g in self.groups]}


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

    @property
    def axis_divisors(self) -> tuple[int, ...]:
        from kerasbrain.windows import axis_divisors

        return axis_divisors(self.network)

    def get_config(self):
        return {"network": keras.saving.serialize_keras_object(self.network), "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
