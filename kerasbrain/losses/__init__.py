"""Segmentation losses (keras.ops only, every backend)."""

from kerasbrain.losses.dice import DiceCELoss, PerSampleDiceBCELoss, SoftDiceLoss

__all__ = ["SoftDiceLoss", "DiceCELoss", "PerSampleDiceBCELoss"]
