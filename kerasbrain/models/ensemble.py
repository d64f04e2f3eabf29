"""An ensemble of segmentation networks as one Keras model: the members' weighted mean, in one graph.

Built from `kerasbrain crossval`'s ensemble.json (`inference/ensemble.py`), it is a model like any
other: every window passes through every member on the device and only the mean comes back, the
device sliding window and mirror TTA apply to it unchanged, and export writes it as one SavedModel
whose `serving_default` and whole-case `segment_case` average the members in the graph. Saved as
`.keras`, it holds every member's config and weights and loads in a fresh process.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasbrain.serialization import register


@register
class WeightedMean(keras.layers.Layer):
    """sum_i w_i * x_i over a list of same-shaped tensors; with `with_squares`, sum_i w_i * x_i^2 after it
    along the channels (the members' mean and mean of squares, for their spread)."""

    def __init__(self, member_weights, with_squares: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.member_weights = [float(w) for w in member_weights]
        self.with_squares = bool(with_squares)

    def call(self, inputs):
        mean, square = 0.0, 0.0
        for x, w in zip(inputs, self.member_weights):
            x = ops.cast(x, "float32")
            mean = mean + x * w
            if self.with_squares:
                square = square + x * x * w
        return ops.concatenate([mean, square], axis=-1) if self.with_squares else mean

    def get_config(self):
        return {**super().get_config(), "member_weights": self.member_weights, "with_squares": self.with_squares}


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


@register
class EnsembleNet(keras.Model):
    """Segmentation networks of one kind averaged: `members` (models or their serialized configs), `member_weights`.

    Members are renamed `member_<i>` so that several copies of one architecture can sit in one graph.
    """

    def __init__(self, members, member_weights, name=None, **kwargs):
        if not members or len(members) != len(member_weights):
            raise ValueError(f"an ensemble needs members and one weight each; got {len(members)} and "
                             f"{len(member_weights)}")
        built = []
        for i, member in enumerate(members):
            config = member if isinstance(member, dict) else keras.saving.serialize_keras_object(member)
            config = {**config, "config": {**config["config"], "name": f"member_{i}"}}
            clone = keras.saving.deserialize_keras_object(config)
            if not isinstance(member, dict):
                clone.set_weights(member.get_weights())
            built.append(clone)
        dims = {getattr(m, "spatial_dims", None) for m in built}
        if len(dims) != 1 or None in dims:
            raise ValueError("ensemble members must all be 2-D or all 3-D kerasbrain segmentation networks")
        channels = built[0].inputs[0].shape[-1]
        inputs = keras.Input(shape=(None,) * dims.pop() + (channels,), name="image")
        outputs = WeightedMean(member_weights, name="weighted_mean", dtype="float32")(
            [_first(m(inputs)) for m in built])
        super().__init__(inputs=inputs, outputs=outputs, name=name or "ensemble", **kwargs)
        self.members = built
        self.member_weights = [float(w) for w in member_weights]

    @property
    def spatial_dims(self) -> int:
        return int(self.members[0].spatial_dims)

    @property
    def size_divisor(self) -> int:
        """Input sides must suit every member: the least common multiple of their divisors."""
        from kerasbrain.windows import size_divisor

        return math.lcm(*(size_divisor(m) for m in self.members))

    @property
    def axis_divisors(self) -> tuple[int, ...]:
        """Per axis, the least common multiple of the members' divisors."""
        from kerasbrain.windows import axis_divisors

        return tuple(math.lcm(*sides) for sides in zip(*(axis_divisors(m) for m in self.members)))

    def moments_model(self) -> keras.Model:
        """The same members as a model of their weighted mean and mean of squares (2C channels).

        Uncertainty (`inference/uncertainty.py`) then spans the members as well as the mirror views:
        blended over windows and flips, these give the mean and variance over every (member, flip)
        prediction, weighted as the ensemble weighs its members. Shares this model's weights.
        """
        inputs = keras.Input(shape=self.inputs[0].shape[1:], name="image")
        outputs = WeightedMean(self.member_weights, with_squares=True, name="weighted_moments", dtype="float32")(
            [_first(m(inputs)) for m in self.members])
        model = keras.Model(inputs, outputs, name=f"{self.name}_moments")
        model.gives_member_moments = True
        model.member_count = len(self.members)
        return model

    def get_config(self):
        return {"members": [keras.saving.serialize_keras_object(m) for m in self.members],
                "member_weights": self.member_weights, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
