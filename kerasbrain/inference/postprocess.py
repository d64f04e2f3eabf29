"""BraTS post-processing of a predicted label map (what the BraTS winners and nnU-Net do).

A case whose predicted enhancing tumour is smaller than a threshold is most often a case without
enhancing tumour (a low-grade glioma), and BraTS scores an empty truth with a non-empty prediction
as Dice 0 and the maximal HD95; relabelling that small enhancing region as necrotic / non-enhancing
core keeps it in the tumour core and whole tumour and removes the penalty. The threshold
(`[inference] min_enhancing_ml`, 0 = off) is chosen on validation cases: `kerasbrain evaluate`
reports the value its cases favour (`choose_min_enhancing_ml`); run it with `--subset validation`.
"""

from __future__ import annotations

import numpy as np

from kerasbrain.data.labels import ENHANCING, NECROTIC_CORE


def relabel_small_enhancing(labels: np.ndarray, spacing, min_ml: float) -> np.ndarray:
    """`labels` with enhancing tumour relabelled as necrotic core when its volume is below `min_ml` mL."""
    if min_ml <= 0:
        return labels
    enhancing = labels == ENHANCING
    volume_ml = float(enhancing.sum()) * float(np.prod(spacing)) / 1000.0
    if 0 < volume_ml < min_ml:
        labels = np.where(enhancing, NECROTIC_CORE, labels).astype(labels.dtype)
    return labels


def enhancing_dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """BraTS's enhancing-tumour Dice: 1 when both are empty, 0 when only one is."""
    p, t = predicted == ENHANCING, truth == ENHANCING
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2.0 * (p & t).sum() / total)


#: Thresholds tried by `evaluate` (mL; at 1 mm, 0.2 mL is 200 voxels, nnU-Net's BraTS choice's order).
CANDIDATES_ML = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def enhancing_dice_by_threshold(labels, truth, spacing, candidates=CANDIDATES_ML) -> dict[float, float]:
    """One case's enhancing Dice for each candidate threshold (`labels` not yet post-processed)."""
    return {t: enhancing_dice(relabel_small_enhancing(labels, spacing, t), truth) for t in candidates}


def choose_min_enhancing_ml(per_case: list[dict[float, float]]) -> tuple[float, dict[float, float]]:
    """The threshold with the best mean enhancing Dice over cases (`enhancing_dice_by_threshold`'s).

    Returns (threshold, {threshold: mean Dice}); ties go to the smallest threshold (0 = off).
    """
    scores = {t: float(np.mean([case[t] for case in per_case])) for t in per_case[0]}
    best = max(scores.values())
    return min(t for t, s in scores.items() if s >= best - 1e-12), scores
