"""Soft Dice (seed 003) and Dice + binary cross-entropy, for sigmoid outputs per channel.

Inputs are probabilities of shape (batch, *spatial, channels) with targets of the same shape.
Each channel's Dice is computed over the spatial axes and averaged over channels (and over the
batch unless `batch_dice`, nnU-Net's option of pooling the batch into one volume).
"""

from __future__ import annotations

import keras
from keras import ops

from kerasbrain.serialization import register


def soft_dice(y_true, y_pred, smooth=1e-5, squared=False, batch_dice=False, per_sample=False):
    """Per-channel soft Dice coefficient, averaged; differentiable in `y_pred`.

    `per_sample`: one value per batch item, shape (batch,) (the losses' form; see `_per_sample`).
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    rank = len(y_pred.shape)
    axes = tuple(range(0 if batch_dice else 1, rank - 1))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    if squared:  # Milletari's V-Net form, used by seed 003
        denominator = ops.sum(ops.square(y_true), axis=axes) + ops.sum(ops.square(y_pred), axis=axes)
    else:
        denominator = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    dice = (2.0 * intersection + smooth) / (denominator + smooth)
    if per_sample:
        return _per_sample(ops.mean(dice, axis=-1), y_pred)
    return ops.mean(dice)


def _per_sample(value, y_pred):
    """`value` as one number per batch item, shape (batch,), broadcasting a batch-wide scalar.

    Losses return this shape rather than a scalar so that Keras reduces them itself: under a
    `tf.distribute` strategy it then divides each replica's loss by the number of replicas, and
    the summed gradients equal one device's (a scalar loss would be left unscaled: R times the step).
    """
    return ops.broadcast_to(value, ops.shape(y_pred)[:1])


@register
class SoftDiceLoss(keras.losses.Loss):
    """1 - soft Dice, averaged over channels (regions)."""

    def __init__(self, smooth=1e-5, squared=False, batch_dice=False, name="soft_dice_loss", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.smooth = smooth
        self.squared = squared
        self.batch_dice = batch_dice

    def call(self, y_true, y_pred):
        return 1.0 - soft_dice(y_true, y_pred, self.smooth, self.squared, self.batch_dice, per_sample=True)

    def get_config(self):
        config = super().get_config()
        config.update(smooth=self.smooth, squared=self.squared, batch_dice=self.batch_dice)
        return config


@register
class DiceCELoss(keras.losses.Loss):
    """Soft Dice loss plus binary cross-entropy (nnU-Net's compound loss), weighted."""

    def __init__(self, dice_weight=1.0, ce_weight=1.0, smooth=1e-5, batch_dice=False, name="dice_ce_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.smooth = smooth
        self.batch_dice = batch_dice

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        dice = 1.0 - soft_dice(y_true, y_pred, self.smooth, False, self.batch_dice, per_sample=True)
        spatial = tuple(range(1, len(y_pred.shape) - 1))
        ce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=spatial)
        return self.dice_weight * dice + self.ce_weight * ce

    def get_config(self):
        config = super().get_config()
        config.update(dice_weight=self.dice_weight, ce_weight=self.ce_weight, smooth=self.smooth,
                      batch_dice=self.batch_dice)
        return config


@register
class PerSampleDiceBCELoss(keras.losses.Loss):
    """Dice + BCE computed per sample, so per-sample weights can switch it off (multi-task training).

    A sample without a mask is given weight 0 and adds exactly nothing; Keras averages the
    weighted per-sample values over the batch.
    """

    def __init__(self, dice_weight=1.0, ce_weight=1.0, smooth=1.0, name="per_sample_dice_bce_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.smooth = smooth

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        axes = tuple(range(1, len(y_pred.shape)))
        intersection = ops.sum(y_true * y_pred, axis=axes)
        denominator = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
        dice = 1.0 - (2.0 * intersection + self.smooth) / (denominator + self.smooth)
        ce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=tuple(range(1, len(y_pred.shape) - 1)))
        return self.dice_weight * dice + self.ce_weight * ce

    def get_config(self):
        config = super().get_config()
        config.update(dice_weight=self.dice_weight, ce_weight=self.ce_weight, smooth=self.smooth)
        return config
