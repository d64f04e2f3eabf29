"""Binary-mask scores for 2-D slice segmentation: per image, pooled over all pixels, and seed 002's report.

Empty masks: Dice and IoU are 1 when truth and prediction are both empty (nothing to find, nothing
found) and 0 when only one is; precision is NaN when nothing is predicted and recall NaN when the
truth is empty (undefined; left out of means and counted).
"""

from __future__ import annotations

import numpy as np

SCORES = ("dice", "iou", "accuracy", "precision", "recall")


def confusion(pred, truth) -> tuple[int, int, int, int]:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return tp, fp, fn, pred.size - tp - fp - fn


def scores_from_counts(tp, fp, fn, tn) -> dict[str, float]:
    nan = float("nan")
    return {
        "dice": 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn),
        "iou": 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn),
        "accuracy": (tp + tn) / max(tp + fp + fn + tn, 1),
        "precision": nan if tp + fp == 0 else tp / (tp + fp),
        "recall": nan if tp + fn == 0 else tp / (tp + fn),
    }


def binary_scores(pred, truth) -> dict[str, float]:
    return scores_from_counts(*confusion(pred, truth))


def dataset_scores(preds, truths) -> dict[str, dict[str, float]]:
    """{"pixels": scores pooled over every pixel, "images": mean of per-image scores (NaN left out)}."""
    counts = np.zeros(4, dtype=np.int64)
    per_image = []
    for p, t in zip(preds, truths):
        c = confusion(p, t)
        counts += c
        per_image.append(scores_from_counts(*c))
    return {"pixels": scores_from_counts(*counts.tolist()), "images": mean_scores(per_image)}


def mean_scores(rows: list[dict]) -> dict[str, float]:
    """Each score's mean over `rows` (images, patients), undefined (NaN) values left out; NaN if all are."""
    return {k: float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")
            for k in SCORES for values in [np.array([r[k] for r in rows], dtype=float)]}


def classification_report(preds, truths) -> str:
    """Seed 002's pixel-wise report (Background / Tumor) from scikit-learn."""
    from sklearn.metrics import classification_report as report

    y_pred = np.concatenate([np.asarray(p, bool).ravel() for p in preds])
    y_true = np.concatenate([np.asarray(t, bool).ravel() for t in truths])
    return report(y_true, y_pred, labels=[False, True], target_names=["Background", "Tumor"], digits=4,
                  zero_division=0)
