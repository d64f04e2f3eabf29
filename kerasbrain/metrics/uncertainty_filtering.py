"""Is the uncertainty any good? QU-BraTS's filtering curves (Mehta et al., BraTS 2019-2020).

For one region (a binary truth and prediction) and an uncertainty in [0, 100] per voxel (0 =
certain): at each threshold tau, from 100 down to 0, the voxels with uncertainty above tau are
filtered out and three things are measured:

- Dice on the voxels kept (truth and prediction both masked by the kept voxels; empty and empty
  is 1): good uncertainty marks the wrong voxels, so Dice rises as they go;
- the filtered true-positive ratio, (TP before - TP kept) / TP before, inside the head mask;
- the filtered true-negative ratio, the same for true negatives: good uncertainty filters few of
  the correct voxels.

Each curve's area over tau / 100 (trapezoids) summarises it, and the challenge's score is
(AUC Dice + (1 - AUC FTP) + (1 - AUC FTN)) / 3. Two controls: the same values shuffled within the
head (an uncertainty that knows nothing; it mostly lands on easy background, so it filters little
and the score, which rewards filtering little, can favour it), and an edge map that says only "near
the predicted border is uncertain" (100 on the border falling to 0 at `width` voxels away): an
uncertainty worth having beats the edge map, which flags as many voxels in the same places.
"""

from __future__ import annotations

import numpy as np

#: QU-BraTS's thresholds: 100, 75, 50, 25, 0
THRESHOLDS = (100.0, 75.0, 50.0, 25.0, 0.0)


def filtering_curves(truth: np.ndarray, prediction: np.ndarray, uncertainty: np.ndarray, head: np.ndarray,
                     thresholds=THRESHOLDS) -> dict:
    """Dice, filtered TP ratio and filtered TN ratio at each threshold, and their areas and score."""
    truth, prediction, head = (np.asarray(a, bool) for a in (truth, prediction, head))
    uncertainty = np.asarray(uncertainty, np.float32)
    tp_all = truth & prediction & head
    tn_all = ~truth & ~prediction & head
    n_tp, n_tn = int(tp_all.sum()), int(tn_all.sum())
    dice, ftp, ftn = [], [], []
    for tau in thresholds:
        kept = uncertainty <= tau
        t, p = truth & kept, prediction & kept
        both = int(t.sum()) + int(p.sum())
        dice.append(1.0 if both == 0 else 2.0 * int((t & p).sum()) / both)
        ftp.append((n_tp - int((tp_all & kept).sum())) / n_tp if n_tp else 0.0)
        ftn.append((n_tn - int((tn_all & kept).sum())) / n_tn if n_tn else 0.0)
    x = np.asarray(thresholds, float)
    area = {name: abs(float(np.trapezoid(values, x))) / 100.0 for name, values in
            (("dice", dice), ("ftp", ftp), ("ftn", ftn))}
    return {"thresholds": [float(t) for t in thresholds], "dice": dice, "ftp": ftp, "ftn": ftn,
            "auc_dice": area["dice"], "auc_ftp": area["ftp"], "auc_ftn": area["ftn"],
            "score": (area["dice"] + (1 - area["ftp"]) + (1 - area["ftn"])) / 3.0}


def shuffled_within(uncertainty: np.ndarray, head: np.ndarray, seed: int = 0) -> np.ndarray:
    """The control: the same uncertainty values, permuted among the head's voxels (outside unchanged)."""
    out = np.array(uncertainty, np.float32, copy=True)
    inside = np.asarray(head, bool)
    values = out[inside]
    np.random.default_rng(seed).shuffle(values)
    out[inside] = values
    return out


def edge_uncertainty(prediction: np.ndarray, width: float = 3.0) -> np.ndarray:
    """The edge control: 100 at the predicted region's border, falling linearly to 0 at `width` voxels
    from it on either side, whole numbers (0 everywhere when nothing or everything is predicted)."""
    from scipy import ndimage

    prediction = np.asarray(prediction, bool)
    if not prediction.any() or prediction.all():
        return np.zeros(prediction.shape, np.float32)
    distance = np.where(prediction, ndimage.distance_transform_edt(prediction),
                        ndimage.distance_transform_edt(~prediction))  # 1 on either side of the border
    return np.rint(100.0 * np.clip(1.0 - (distance - 1.0) / width, 0.0, 1.0)).astype(np.float32)
