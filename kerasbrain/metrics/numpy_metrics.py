"""Per-case segmentation scores in numpy, following the BraTS conventions for empty masks.

- Dice: 1 when truth and prediction are both empty, 0 when exactly one is.
- Sensitivity: NaN when the truth is empty (undefined; excluded from means and counted).
- Specificity: NaN only when there are no negatives at all (never for a brain volume).
- HD95: 0 when both are empty; `EMPTY_HD95` (373.13 mm, the diagonal of the 240 x 240 x 155 BraTS
  grid, as the BraTS 2021 evaluation uses) when exactly one is. Otherwise MONAI's definition: the
  larger of the two directed 95th-percentile surface distances, in mm given the voxel spacing
  (in voxels without it, which is mm only for 1 mm grids such as MSD and BraTS).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from kerasbrain.data.labels import LABEL_CLASSES, REGION_LABELS, REGIONS

EMPTY_HD95 = 373.13


def _counts(pred, truth):
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = np.count_nonzero(pred & truth)
    fp = np.count_nonzero(pred & ~truth)
    fn = np.count_nonzero(~pred & truth)
    tn = pred.size - tp - fp - fn
    return tp, fp, fn, tn


def dice(pred, truth) -> float:
    tp, fp, fn, _ = _counts(pred, truth)
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2 * tp + fp + fn)


def sensitivity(pred, truth) -> float:
    tp, _, fn, _ = _counts(pred, truth)
    return float("nan") if tp + fn == 0 else tp / (tp + fn)


def specificity(pred, truth) -> float:
    _, fp, _, tn = _counts(pred, truth)
    return float("nan") if tn + fp == 0 else tn / (tn + fp)


def _surface(mask):
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                          border_value=0)


def hd95(pred, truth, spacing=None) -> float:
    """95th-percentile symmetric Hausdorff distance between two masks' surfaces (mm given `spacing`, else voxels)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return EMPTY_HD95
    spacing = (1.0,) * pred.ndim if spacing is None else tuple(spacing)
    # crop to the union's bounding box (plus a margin) to keep the distance transforms small
    union = pred | truth
    box = tuple(slice(max(int(i.min()) - 2, 0), int(i.max()) + 3) for i in np.nonzero(union))
    pred, truth = pred[box], truth[box]
    sp, st = _surface(pred), _surface(truth)
    dist_to_truth = ndimage.distance_transform_edt(~st, sampling=spacing)
    dist_to_pred = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return float(max(np.percentile(dist_to_truth[sp], 95), np.percentile(dist_to_pred[st], 95)))


def soft_dice(probabilities, truth, epsilon: float = 1e-5) -> float:
    """Seed 003's Dice coefficient: (2 sum(p * y) + eps) / (sum(p) + sum(y) + eps) on probabilities,
    not thresholded (its `dice_coefficient` metric, whose validation value 0.7273 it reports)."""
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(truth, np.float64)
    return float((2 * (p * y).sum() + epsilon) / (p.sum() + y.sum() + epsilon))


def region_scores(pred_labels, truth_labels, spacing=None, with_hd95=True) -> dict[str, float]:
    """All per-case scores for internal label maps: per region (Dice, sens, spec, HD95) and per label.

    Keys look like `dice_WT`, `hd95_ET`, `sens_edema` (seed 003 reports per-label rates).
    """
    scores = {}
    for region in REGIONS:
        p = np.isin(pred_labels, REGION_LABELS[region])
        t = np.isin(truth_labels, REGION_LABELS[region])
        scores[f"dice_{region}"] = dice(p, t)
        scores[f"sens_{region}"] = sensitivity(p, t)
        scores[f"spec_{region}"] = specificity(p, t)
        if with_hd95:
            scores[f"hd95_{region}"] = hd95(p, t, spacing)
    for value, name in zip((2, 1, 3), LABEL_CLASSES):
        p, t = pred_labels == value, truth_labels == value
        scores[f"sens_{name}"] = sensitivity(p, t)
        scores[f"spec_{name}"] = specificity(p, t)
    return scores
