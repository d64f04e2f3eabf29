"""Segmentation and contrastive losses (keras.ops only, every backend)."""

from kerasbrain.losses.contrastive import NTXentLoss, nt_xent
from kerasbrain.losses.dice import DiceCELoss, PerSampleDiceBCELoss, SoftDiceLoss

__all__ = ["SoftDiceLoss", "DiceCELoss", "PerSampleDiceBCELoss", "NTXentLoss", "nt_xent"]
