"""Evaluating the classification families: seed 000's tables, curves and the mask scores.

Classes: accuracy, per-class precision / recall / F1 (seed 000's table), macro F1, macro
one-vs-rest ROC-AUC, the confusion matrix, ROC and precision-recall curves. Masks (images that
have one): Dice and IoU pooled over all their pixels, and both as curves over the threshold.
Everything is written to the output folder as Markdown, CSV, JSON and PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kerasbrain.data.classes import CLASS_TITLES, CLASSES
from kerasbrain.files import atomic_write, write_csv, write_json, write_text

THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 2)


def classification_scores(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Scores of class probabilities (N, K) against labels (N,), computed with scikit-learn."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score

    k = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = sorted(set(y_true.tolist()))
    auc = math.nan  # undefined when a class is absent from y_true
    if len(present) == k:
        auc = float(roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro", labels=labels))
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "macro_roc_auc": auc,
        "per_class": {CLASSES[c]: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                                   "support": int(support[c])} for c in labels},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes_present": [CLASSES[c] for c in present],
    }


def mask_scores(truth: np.ndarray, probabilities: np.ndarray, thresholds=THRESHOLDS) -> dict:
    """Pooled Dice and IoU at 0.5 and as curves over `thresholds` (truth and probabilities (N, H, W))."""
    t = truth.astype(bool).ravel()
    p = probabilities.ravel()
    curves = {"threshold": [float(x) for x in thresholds], "dice": [], "iou": []}
    for threshold in thresholds:
        pred = p >= threshold
        tp = np.count_nonzero(pred & t)
        fp = np.count_nonzero(pred & ~t)
        fn = np.count_nonzero(~pred & t)
        curves["dice"].append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        curves["iou"].append(1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn))
    at_half = list(thresholds).index(0.5) if 0.5 in thresholds else None
    return {"n": int(len(truth)), "dice": curves["dice"][at_half] if at_half is not None else math.nan,
            "iou": curves["iou"][at_half] if at_half is not None else math.nan, "curves": curves}


def class_table(scores: dict) -> str:
    """Seed 000's per-class table plus the headline scores, as Markdown."""
    lines = [f"Accuracy {scores['accuracy']:.4f} | macro F1 {scores['macro_f1']:.4f} | "
             f"macro ROC-AUC {scores['macro_roc_auc']:.4f} | n = {scores['n']}", "",
             "| Class | Precision | Recall | F1-score | Support |", "|---|---|---|---|---|"]
    for name, title in zip(CLASSES, CLASS_TITLES):
        c = scores["per_class"][name]
        lines.append(f"| {title} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |")
    return "\n".join(lines)


def predict_images(model, images: np.ndarray, batch_size: int = 16) -> dict[str, np.ndarray]:
    """uint8 (N, H, W, 3) images -> {"class": (N, K), "mask": (N, H, W)} probabilities (the model's tasks)."""
    out: dict[str, list] = {}
    for i in range(0, len(images), batch_size):
        result = model.predict_on_batch(images[i:i + batch_size].astype(np.float32) / 255.0)
        for key, value in result.items():
            out.setdefault(key, []).append(np.asarray(value))
    result = {k: np.concatenate(v) for k, v in out.items()}
    if "mask" in result:
        result["mask"] = result["mask"][..., 0]
    return result


def save_curves(path, scores: dict | None, y_true, probabilities, masks: dict | None) -> Path:
    """Confusion matrix, ROC, precision-recall and Dice/IoU-over-threshold panels in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    panels = (3 if scores else 0) + (1 if masks else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2))
    axes = list(np.atleast_1d(axes))
    if scores:
        ax = axes.pop(0)
        cm = np.array(scores["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (r, c), v in np.ndenumerate(cm):
            ax.text(c, r, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(CLASSES)), CLASS_TITLES, rotation=30, ha="right")
        ax.set_yticks(range(len(CLASSES)), CLASS_TITLES)
        ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title("confusion matrix")
        roc_ax, pr_ax = axes.pop(0), axes.pop(0)
        for c, title in enumerate(CLASS_TITLES):
            positives = y_true == c
            if positives.any() and (~positives).any():
                fpr, tpr, _ = roc_curve(positives, probabilities[:, c])
                roc_ax.plot(fpr, tpr, label=title)
                precision, recall, _ = precision_recall_curve(positives, probabilities[:, c])
                pr_ax.plot(recall, precision, label=title)
        roc_ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (one vs rest)")
        pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall")
        roc_ax.legend(fontsize=8), pr_ax.legend(fontsize=8)
    if masks:
        ax = axes.pop(0)
        ax.plot(masks["curves"]["threshold"], masks["curves"]["dice"], label="Dice")
        ax.plot(masks["curves"]["threshold"], masks["curves"]["iou"], label="IoU")
        ax.set(xlabel="threshold", ylabel="score", title=f"mask scores (n = {masks['n']})", ylim=(0, 1))
        ax.legend()
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def evaluate_images(model, samples, image_size: int, out_dir, progress=print) -> dict:
    """Score a classification-family model on `samples`; writes summary.{json,md}, images.csv, curves.png.

    Unreadable images are reported and left out (`failed`, also in summary.json)."""
    from kerasbrain.data.errors import keep_readable
    from kerasbrain.data.tumour_images import load_samples

    out_dir = Path(out_dir)
    samples, failed = keep_readable(samples, lambda s: load_samples([s], image_size), lambda s: s.image.name,
                                    progress)
    if not samples:
        raise ValueError("none of the images could be read" + (f"; first: {failed[0]['error']}" if failed else ""))
    images, labels, masks, has_mask = load_samples(samples, image_size, progress)
    predicted = predict_images(model, images)
    summary, text = {}, []
    labelled = labels >= 0
    if "class" in predicted and labelled.any():
        summary["classes"] = classification_scores(labels[labelled], predicted["class"][labelled])
        text.append(class_table(summary["classes"]))
    if "mask" in predicted and has_mask.any():
        summary["masks"] = mask_scores(masks[has_mask, ..., 0], predicted["mask"][has_mask])
        text.append(f"Masks (n = {summary['masks']['n']}): Dice {summary['masks']['dice']:.4f}, "
                    f"IoU {summary['masks']['iou']:.4f} at threshold 0.5")
    if not summary:
        raise ValueError("nothing to score: the images have neither classes nor masks this model predicts")
    rows = []
    for i, sample in enumerate(samples):
        row = {"id": sample.id, "true_class": CLASSES[labels[i]] if labels[i] >= 0 else ""}
        if "class" in predicted:
            row["predicted_class"] = CLASSES[int(predicted["class"][i].argmax())]
            row.update({f"p_{c}": round(float(p), 5) for c, p in zip(CLASSES, predicted["class"][i])})
        if "mask" in predicted:
            row["mask_dice"] = (mask_scores(masks[i:i + 1, ..., 0], predicted["mask"][i:i + 1], [0.5])["dice"]
                                if has_mask[i] else "")
        rows.append(row)
    table = "\n\n".join(text)
    written = [
        write_csv(out_dir / "images.csv", rows),
        write_json(out_dir / "summary.json", {**summary, "failed": failed} if failed else summary),
        write_text(out_dir / "summary.md", table + "\n"),
        save_curves(out_dir / "curves.png", summary.get("classes"), labels[labelled],
                    predicted["class"][labelled] if "class" in predicted else None, summary.get("masks")),
    ]
    progress(f"evaluated {len(samples)} images")
    return {"summary": summary, "table": table, "files": written, "failed": failed}
