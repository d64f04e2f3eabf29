"""Streaming per-channel overlap metrics for `model.fit` (keras.ops only, every backend).

They accumulate true/false positives/negatives of the thresholded prediction over all batches of
an epoch, so the reported value is the Dice of all voxels seen (a "global" Dice), not a mean of
per-batch values; `kerasbrain evaluate` reports the per-case numbers.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasbrain.data.labels import REGIONS
from kerasbrain.serialization import register


class _ChannelConfusion(keras.metrics.Metric):
    """Confusion counts of channel `channel` of a (batch, *spatial, channels) prediction."""

    def __init__(self, channel=0, threshold=0.5, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.channel = channel
        self.threshold = threshold
        self.tp = self.add_variable((), initializer="zeros", name="tp")
        self.fp = self.add_variable((), initializer="zeros", name="fp")
        self.fn = self.add_variable((), initializer="zeros", name="fn")
        self.tn = self.add_variable((), initializer="zeros", name="tn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.cast(y_true[..., self.channel] > 0.5, self.dtype)
        pred = ops.cast(y_pred[..., self.channel] > self.threshold, self.dtype)
        weight = 1.0
        if sample_weight is not None:  # per-sample weights (B,): a sample weighted 0 is not counted
            weight = ops.reshape(ops.cast(sample_weight, self.dtype), (-1,) + (1,) * (len(truth.shape) - 1))
        self.tp.assign_add(ops.sum(truth * pred * weight))
        self.fp.assign_add(ops.sum((1 - truth) * pred * weight))
        self.fn.assign_add(ops.sum(truth * (1 - pred) * weight))
        self.tn.assign_add(ops.sum((1 - truth) * (1 - pred) * weight))

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn, self.tn):
            v.assign(0.0)

    def get_config(self):
        return {"channel": self.channel, "threshold": self.threshold, "name": self.name, "dtype": self.dtype}


def _ratio(num, den, empty):
    """num / den, or `empty` when den == 0."""
    return ops.where(den > 0, num / ops.maximum(den, 1e-12), empty)


@register
class RegionDice(_ChannelConfusion):
    """Dice of one output channel; 1.0 when both truth and prediction are empty."""

    def result(self):
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, 1.0)


@register
class RegionSensitivity(_ChannelConfusion):
    """Sensitivity (recall) of one channel; 1.0 when the truth is empty."""

    def result(self):
        return _ratio(self.tp, self.tp + self.fn, 1.0)


@register
class RegionSpecificity(_ChannelConfusion):
    """Specificity of one channel; 1.0 when there are no negatives."""

    def result(self):
        return _ratio(self.tn, self.tn + self.fp, 1.0)


@register
class MeanSoftDice(keras.metrics.Metric):
    """Seed 003's `dice_coefficient`: (2 sum(p y) + eps) / (sum(p) + sum(y) + eps) on probabilities,
    per sample and channel, averaged; the epoch's value is the mean over its batches (as Keras
    averages a metric function), so a validation value sits beside seed 003's reported 0.7273."""

    def __init__(self, epsilon=1e-5, name="soft_dice", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.epsilon = epsilon
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = ops.cast(y_true, self.dtype), ops.cast(y_pred, self.dtype)
        axes = tuple(range(1, len(y_pred.shape) - 1))
        overlap = 2 * ops.sum(y_true * y_pred, axis=axes) + self.epsilon
        dice = overlap / (ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes) + self.epsilon)
        self.total.assign_add(ops.mean(dice))
        self.count.assign_add(1.0)

    def result(self):
        return _ratio(self.total, self.count, 0.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"epsilon": self.epsilon, "name": self.name, "dtype": self.dtype}


def region_metrics(regions=REGIONS, with_rates=True):
    """Dice (and sensitivity/specificity) metric objects for each output channel, named by region."""
    metrics = []
    for i, region in enumerate(regions):
        metrics.append(RegionDice(i, name=f"dice_{region}"))
        if with_rates:
            metrics.append(RegionSensitivity(i, name=f"sens_{region}"))
            metrics.append(RegionSpecificity(i, name=f"spec_{region}"))
    return metrics
