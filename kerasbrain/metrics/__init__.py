"""Segmentation metrics: Keras metrics for `fit` and numpy functions for evaluation."""

from kerasbrain.metrics.keras_metrics import (
    MeanSoftDice, RegionDice, RegionSensitivity, RegionSpecificity, region_metrics,
)
from kerasbrain.metrics.numpy_metrics import (
    EMPTY_HD95,
    dice,
    hd95,
    region_scores,
    sensitivity,
    specificity,
)

__all__ = [
    "MeanSoftDice",
    "RegionDice", "RegionSensitivity", "RegionSpecificity", "region_metrics",
    "EMPTY_HD95", "dice", "hd95", "sensitivity", "specificity", "region_scores",
]
