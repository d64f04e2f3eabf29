"""Evaluating and applying 2-D slice models: tables, seed 002's report and prediction figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from kerasbrain.data.lgg import read_image, read_mask
from kerasbrain.data.slices import load_slices, median_clahe, to_float
from kerasbrain.files import atomic_write
from kerasbrain.metrics.binary import SCORES, binary_scores, classification_report, dataset_scores


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(image, ((0, ph), (0, pw), (0, 0))), (h, w)


def predict_probabilities(model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """(N, H, W, 3) float images -> (N, H, W) tumour probabilities (padding to the model's multiple)."""
    divisor = getattr(model, "size_divisor", 32)
    padded = np.stack([pad_to_multiple(im, divisor)[0] for im in images])
    out = [np.asarray(model.predict_on_batch(padded[i:i + batch_size]))[..., 0]
           for i in range(0, len(padded), batch_size)]
    h, w = images.shape[1:3]
    return np.concatenate(out)[:, :h, :w]


def evaluate_slices(model, slices, out_dir, enhance: bool = False, threshold: float = 0.5, progress=print) -> dict:
    """Scores over `slices`: per-image CSV, pooled and per-image summary, pixel-wise classification report."""
    out_dir = Path(out_dir)
    images, masks = load_slices(slices, enhance)
    probs = predict_probabilities(model, images)
    preds, truths = probs >= threshold, masks[..., 0] > 0.5
    rows = [{"patient": s.patient, "slice": s.index, **binary_scores(p, t)} for s, p, t in zip(slices, preds, truths)]
    summary = dataset_scores(preds, truths)
    report = classification_report(preds, truths)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    table = ["| score | all pixels | mean over images |", "|---|---|---|"]
    table += [f"| {k} | {summary['pixels'][k]:.4f} | {summary['images'][k]:.4f} |" for k in SCORES]
    table = "\n".join(table)
    atomic_write(out_dir / "slices.csv", lambda tmp: Path(tmp).write_text(buffer.getvalue()))
    atomic_write(out_dir / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    atomic_write(out_dir / "summary.md", lambda tmp: Path(tmp).write_text(table + "\n"))
    atomic_write(out_dir / "classification_report.txt", lambda tmp: Path(tmp).write_text(report))
    progress(f"evaluated {len(slices)} slices of {len({s.patient for s in slices})} patients")
    return {"rows": rows, "summary": summary, "table": table, "report": report, "out_dir": out_dir}


def predict_slice_file(model, image_path, out_png, truth_path=None, enhance: bool = False, threshold: float = 0.5,
                       figure_path=None) -> list[Path]:
    """One TIFF/PNG/JPEG slice -> mask PNG (0/255) and seed 002's figure (original | truth | heatmap)."""
    image = read_image(image_path)
    truth = read_mask(truth_path, image.shape[:2]) if truth_path else None
    x = to_float(median_clahe(image) if enhance else image)
    prob = predict_probabilities(model, x[None])[0]
    mask = (prob >= threshold).astype(np.uint8) * 255
    written = [atomic_write(out_png, lambda tmp: _imwrite(tmp, mask))]
    figure_path = Path(figure_path) if figure_path else Path(out_png).with_name(Path(out_png).stem + "_figure.png")
    written.append(save_slice_figure(figure_path, image, prob, truth))
    return written


def _imwrite(path, data):
    import cv2

    if not cv2.imwrite(str(path), data):
        raise OSError(f"{path}: could not write the image")


def save_slice_figure(path, image: np.ndarray, probability: np.ndarray, truth: np.ndarray | None = None) -> Path:
    """Original | ground truth (if given) | prediction heatmap, as seed 002 shows its results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("original (FLAIR)", image[..., 1], "gray")]
    if truth is not None:
        panels.append(("ground truth", truth, "gray"))
    panels.append(("prediction heatmap", probability, "hot"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.2))
    for ax, (title, data, cmap) in zip(np.atleast_1d(axes), panels):
        shown = ax.imshow(data, cmap=cmap, vmin=0, vmax=255 if data.dtype == np.uint8 and data.max() > 1 else 1)
        ax.set_title(title)
        ax.axis("off")
        if title == "prediction heatmap":
            fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path
