"""Robustness: how a 2-D model's scores fall under MRI artefacts of graded severity.

Each corruption works on the grey image in [0, 1] (the slices are grey; RGB channels are copies)
at the model's input size, is seeded, and at severity 0 returns the image unchanged. Severities
1-5 grow roughly evenly from barely visible to severe:
- gaussian_noise: additive N(0, sigma^2).
- rician_noise: the magnitude of a complex image with Gaussian noise on both channels, the noise
  of magnitude MR images (biased upwards in dark regions).
- motion: rigid shifts during acquisition; a random fraction of the phase-encoding lines of
  k-space gets the phase ramp of a random in-plane shift (line corruption).
- ghosting: periodic motion; every k-th phase-encoding line is attenuated and phase-shifted,
  which draws displaced copies of the head along the phase axis.
- bias_field: a smooth multiplicative field exp(c . 2nd-order polynomial) (coil inhomogeneity).
- blur: Gaussian blur (lower resolution, partial volume).
- contrast: contrast reduced around the mean intensity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEVERITIES = (0, 1, 2, 3, 4, 5)
_LEVELS = {
    "gaussian_noise": (0.02, 0.04, 0.07, 0.10, 0.15),  # sigma
    "rician_noise": (0.02, 0.04, 0.07, 0.10, 0.15),  # sigma per channel
    "motion": ((0.04, 1.0), (0.08, 2.0), (0.12, 3.0), (0.18, 4.0), (0.25, 6.0)),  # (line fraction, max shift px)
    "ghosting": (0.15, 0.25, 0.35, 0.5, 0.65),  # attenuation of every 4th line
    "bias_field": (0.15, 0.3, 0.45, 0.6, 0.8),  # field strength c
    "blur": (0.5, 1.0, 1.5, 2.2, 3.0),  # sigma in pixels at 224 px (scaled with the image)
    "contrast": (0.8, 0.65, 0.5, 0.35, 0.2),  # remaining contrast
}
CORRUPTIONS = tuple(_LEVELS)


def _motion(grey, fraction, max_shift, rng):
    k = np.fft.fftshift(np.fft.fft2(grey))
    rows, cols = grey.shape
    lines = rng.random(rows) < fraction
    shifts = rng.uniform(-max_shift, max_shift, size=(rows, 2))
    ky = np.fft.fftshift(np.fft.fftfreq(rows))[:, None]
    kx = np.fft.fftshift(np.fft.fftfreq(cols))[None, :]
    ramp = np.exp(-2j * np.pi * (kx * shifts[:, :1] + ky * shifts[:, 1:]))
    k = np.where(lines[:, None], k * ramp, k)
    return np.abs(np.fft.ifft2(np.fft.ifftshift(k)))


def _ghosting(grey, strength, period=4):
    k = np.fft.fftshift(np.fft.fft2(grey))
    lines = (np.arange(grey.shape[0]) % period) == 0
    k[lines] *= (1.0 - strength) * np.exp(1j * np.pi * strength)
    return np.abs(np.fft.ifft2(np.fft.ifftshift(k)))


def _bias_field(grey, strength, rng):
    rows, cols = grey.shape
    y, x = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    terms = np.stack([x, y, x * y, x ** 2, y ** 2])
    field = np.tensordot(rng.uniform(-1, 1, 5), terms, axes=1)
    field = field / max(np.abs(field).max(), 1e-6)
    return grey * np.exp(strength * field)


def corrupt_grey(grey: np.ndarray, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """One corruption of a float grey image in [0, 1] at `severity` (0: unchanged), clipped to [0, 1]."""
    if corruption not in _LEVELS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}. Received: {corruption!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}. Received: {severity}")
    if severity == 0:
        return grey
    level = _LEVELS[corruption][severity - 1]
    rng = np.random.default_rng(seed)
    g = grey.astype(np.float64)
    if corruption == "gaussian_noise":
        out = g + rng.normal(0, level, g.shape)
    elif corruption == "rician_noise":
        out = np.hypot(g + rng.normal(0, level, g.shape), rng.normal(0, level, g.shape))
    elif corruption == "motion":
        out = _motion(g, *level, rng)
    elif corruption == "ghosting":
        out = _ghosting(g, level)
    elif corruption == "bias_field":
        out = _bias_field(g, level, rng)
    elif corruption == "blur":
        import cv2

        sigma = level * g.shape[0] / 224
        out = cv2.GaussianBlur(g, (0, 0), sigmaX=sigma)
    else:  # contrast
        out = g.mean() + (g - g.mean()) * level
    return np.clip(out, 0.0, 1.0).astype(grey.dtype)


def corrupt_images(images: np.ndarray, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """Corrupt uint8 RGB images (N, H, W, 3) of grey slices; each image gets its own seed."""
    if severity == 0:
        return images
    out = np.empty_like(images)
    for i, image in enumerate(images):
        grey = image.astype(np.float32).mean(axis=-1) / 255.0
        corrupted = corrupt_grey(grey, corruption, severity, seed * 100003 + i)
        out[i] = np.round(corrupted * 255.0).astype(np.uint8)[..., None]
    return out


def robustness_scores(model, images, labels, masks, has_mask, corruptions=CORRUPTIONS, severities=SEVERITIES,
                      seed: int = 0, progress=print) -> list[dict]:
    """One row per corruption and severity: accuracy, macro F1, ECE (class head), mask Dice (mask head)."""
    from kerasbrain.evaluation.calibration import calibration_errors
    from kerasbrain.evaluation.classification import classification_scores, mask_scores, predict_images

    rows = []
    labelled = labels >= 0
    for corruption in corruptions:
        for severity in severities:
            predicted = predict_images(model, corrupt_images(images, corruption, severity, seed))
            row = {"corruption": corruption, "severity": severity}
            if "class" in predicted and labelled.any():
                scores = classification_scores(labels[labelled], predicted["class"][labelled])
                row.update(accuracy=scores["accuracy"], macro_f1=scores["macro_f1"],
                           ece=calibration_errors(predicted["class"][labelled], labels[labelled])["ece"])
            if "mask" in predicted and has_mask.any():
                row["mask_dice"] = mask_scores(masks[has_mask, ..., 0], predicted["mask"][has_mask], [0.5])["dice"]
            rows.append(row)
        progress(f"robustness: {corruption} done")
    return rows


def robustness_table(rows: list[dict]) -> str:
    metrics = [m for m in ("accuracy", "macro_f1", "ece", "mask_dice") if m in rows[0]]
    severities = sorted({r["severity"] for r in rows})
    lines = []
    for metric in metrics:
        lines += [f"**{metric}** by severity", "",
                  "| Corruption | " + " | ".join(str(s) for s in severities) + " |",
                  "|---|" + "---:|" * len(severities)]
        for corruption in dict.fromkeys(r["corruption"] for r in rows):
            values = {r["severity"]: r[metric] for r in rows if r["corruption"] == corruption}
            lines.append(f"| {corruption} | " + " | ".join(f"{values[s]:.4f}" for s in severities) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


def save_degradation_plot(path, rows: list[dict]) -> Path:
    """One panel per metric: the metric against severity, one line per corruption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write

    metrics = [m for m in ("accuracy", "macro_f1", "ece", "mask_dice") if m in rows[0]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for corruption in dict.fromkeys(r["corruption"] for r in rows):
            points = [(r["severity"], r[metric]) for r in rows if r["corruption"] == corruption]
            ax.plot(*zip(*points), marker="o", label=corruption)
        ax.set(title=metric, xlabel="severity", ylim=(0, 1))
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_corruption_gallery(path, image: np.ndarray, corruptions=CORRUPTIONS, seed: int = 0) -> Path:
    """One image under every corruption (rows) at every severity (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write

    fig, axes = plt.subplots(len(corruptions), len(SEVERITIES), figsize=(1.8 * len(SEVERITIES),
                                                                          1.8 * len(corruptions)))
    for r, corruption in enumerate(corruptions):
        for c, severity in enumerate(SEVERITIES):
            ax = axes[r, c]
            ax.imshow(corrupt_images(image[None], corruption, severity, seed)[0])
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(corruption, fontsize=8)
            if r == 0:
                ax.set_title(f"severity {severity}", fontsize=8)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def evaluate_robustness(model, size: int, model_path, data_dir, out_dir, corruptions=CORRUPTIONS,
                        severities=SEVERITIES, max_images: int = 0, seed: int = 0, progress=print) -> dict:
    """Score a classifier / multi-task model on the run's test images (all test images without a run split).

    `model` is the run's model loaded at its image `size` (the family loads it: `load_with_size`).
    """
    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples
    from kerasbrain.files import write_csv, write_json, write_text
    from kerasbrain.runs import SPLIT_FILE, run_dir_of, subset_ids

    samples = discover_tumour_images(data_dir)
    run_dir = run_dir_of(model_path)
    if (run_dir / SPLIT_FILE).exists():
        wanted = set(subset_ids(run_dir, "test"))
        samples = [s for s in samples if s.id in wanted]
    else:
        samples = [s for s in samples if s.subset == "test"] or samples
    if max_images and len(samples) > max_images:  # a seeded random subset: the first N would be a few classes
        keep = np.random.default_rng(seed).choice(len(samples), max_images, replace=False)
        samples = [samples[i] for i in sorted(keep)]
    if not samples:
        raise ValueError(f"{data_dir}: no test images of the run were found")
    images, labels, masks, has_mask = load_samples(samples, size, progress)
    rows = robustness_scores(model, images, labels, masks, has_mask, corruptions, severities, seed, progress)
    out_dir = Path(out_dir)
    table = robustness_table(rows)
    files = [write_csv(out_dir / "robustness.csv", rows), write_json(out_dir / "robustness.json", rows),
             write_text(out_dir / "robustness.md", table + "\n"),
             save_degradation_plot(out_dir / "degradation.png", rows),
             save_corruption_gallery(out_dir / "corruptions.png", images[0], corruptions, seed)]
    return {"rows": rows, "table": table, "files": files}
