"""Phantom axial T1-weighted slices of the four tumour classes, written in the BRISC 2025 and Kaggle layouts.

Each class differs where real ones do, so a classifier must look at place and look, not at a
trivial cue: a glioma sits inside one hemisphere, heterogeneous with a darker core and surrounded
by edema; a meningioma is extra-axial, a homogeneous, well-defined mass against the skull; a
pituitary tumour is small and midline at the sella; "no tumour" has none. Heads vary in size,
shape, position, contrast, bias field and noise; images come in several sizes, grayscale (BRISC)
or 3-channel (Kaggle), so readers and resizing are exercised as real data would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.classes import CLASSES
from kerasbrain.files import atomic_write

_BRISC_CODE = {0: "gl", 1: "me", 2: "no", 3: "pi"}
_KAGGLE_FOLDER = {0: "glioma", 1: "meningioma", 2: "notumor", 3: "pituitary"}
SIZES = (256, 320, 384)


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0):
    c, s = np.cos(angle), np.sin(angle)
    y, x = yy - cy, xx - cx
    return ((c * x + s * y) / rx) ** 2 + ((-s * x + c * y) / ry) ** 2


def _blob(yy, xx, cy, cx, r, rng, wobble=0.25):
    """An irregular round region: radius modulated by a few random harmonics of the angle."""
    angle = np.arctan2(yy - cy, xx - cx)
    radius = r * (1 + sum(wobble / k * np.sin(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)))
    return np.hypot(yy - cy, xx - cx) <= radius


def make_class_slice(label: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (size, size) uint8 slice of class `label` and its tumour mask (0/1; empty for no tumour)."""
    from scipy import ndimage

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size * rng.uniform(0.47, 0.53), size * rng.uniform(0.47, 0.53)
    ry, rx = size * rng.uniform(0.38, 0.44), size * rng.uniform(0.30, 0.36)
    tilt = rng.uniform(-0.12, 0.12)
    head = _ellipse(yy, xx, cy, cx, ry, rx, tilt)
    brain = _ellipse(yy, xx, cy, cx, ry * 0.88, rx * 0.86, tilt)
    image = np.zeros((size, size), np.float32)
    image[head <= 1] = 0.85  # scalp fat and marrow: bright on T1
    image[brain <= 1.08] = 0.12  # CSF rim and skull: dark
    image[brain <= 1] = 0.45  # grey matter
    image[_ellipse(yy, xx, cy, cx, ry * 0.62, rx * 0.58, tilt) <= 1] = 0.62  # white matter
    for side in (-1, 1):  # lateral ventricles
        image[_ellipse(yy, xx, cy - 0.05 * ry, cx + side * 0.12 * rx, 0.22 * ry, 0.07 * rx, side * 0.3) <= 1] = 0.1
    mask = np.zeros((size, size), bool)
    inside = brain <= 1
    if CLASSES[label] == "glioma":
        side = rng.choice([-1, 1])
        ty, tx = cy + rng.uniform(-0.35, 0.35) * ry, cx + side * rng.uniform(0.3, 0.55) * rx
        r = size * rng.uniform(0.06, 0.1)
        edema = _blob(yy, xx, ty, tx, r * 1.8, rng, 0.35) & inside
        mask = _blob(yy, xx, ty, tx, r, rng) & inside
        image[edema] = 0.36
        image[mask] = 0.5 + 0.15 * rng.standard_normal(int(mask.sum())).clip(-2, 2)
        core = _blob(yy, xx, ty, tx, r * 0.5, rng) & mask
        image[core] = 0.22
    elif CLASSES[label] == "meningioma":
        theta = rng.uniform(0, 2 * np.pi)
        ty, tx = cy + 0.86 * ry * np.sin(theta), cx + 0.84 * rx * np.cos(theta)
        r = size * rng.uniform(0.06, 0.09)
        mask = _blob(yy, xx, ty, tx, r, rng, 0.08) & (brain <= 1.08)
        image[mask] = 0.8
    elif CLASSES[label] == "pituitary":
        ty, tx = cy - 0.45 * ry + rng.uniform(-0.04, 0.04) * ry, cx + rng.uniform(-0.02, 0.02) * rx
        r = size * rng.uniform(0.03, 0.05)
        mask = _blob(yy, xx, ty, tx, r, rng, 0.1)
        image[mask] = 0.75
    image = ndimage.gaussian_filter(image, 1.0)
    bias = 1 + 0.15 * ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 6) * (size / 6)
    image = image * rng.uniform(0.8, 1.2) * bias + rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), mask.astype(np.uint8)


def _write(path: Path, data: np.ndarray) -> Path:
    import cv2

    def write(tmp):
        if not cv2.imwrite(str(tmp), data):
            raise OSError(f"{path}: OpenCV could not write the image")

    return atomic_write(path, write)


def write_brisc(out: str | Path, per_class: int = 8, seed: int = 0, test_fraction: float = 0.25,
                progress=None) -> Path:
    """Write `out/brisc2025/` with both tasks; tumour images also go to the segmentation task with masks."""
    root = Path(out) / "brisc2025"
    rng = np.random.default_rng(seed)
    n_test = max(1, round(per_class * test_fraction)) if per_class > 1 else 0
    counter = {"train": 0, "test": 0}
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            subset = "test" if i >= per_class - n_test else "train"
            counter[subset] += 1
            size = int(rng.choice(SIZES))
            image, mask = make_class_slice(label, size, rng)
            stem = f"brisc2025_{subset}_{counter[subset]:05d}_{_BRISC_CODE[label]}_ax_t1"
            _write(root / "classification_task" / subset / name / f"{stem}.jpg", image)
            if mask.any():
                _write(root / "segmentation_task" / subset / "images" / f"{stem}.jpg", image)
                _write(root / "segmentation_task" / subset / "masks" / f"{stem}.png", mask * 255)
        if progress:
            progress(label + 1, name)
    return root


def write_class_folders(out: str | Path, per_class: int = 8, seed: int = 0, test_fraction: float = 0.25,
                        progress=None) -> Path:
    """Write the Kaggle 4-class layout (`Training/`, `Testing/`; 3-channel JPEGs, no masks)."""
    import cv2

    root = Path(out)
    rng = np.random.default_rng(seed + 1)
    n_test = max(1, round(per_class * test_fraction)) if per_class > 1 else 0
    for label in range(len(CLASSES)):
        folder = _KAGGLE_FOLDER[label]
        for i in range(per_class):
            split = "Testing" if i >= per_class - n_test else "Training"
            image, _ = make_class_slice(label, int(rng.choice(SIZES)), rng)
            _write(root / split / folder / f"{split[:2]}-{folder[:2]}_{i:04d}.jpg", cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        if progress:
            progress(label + 1, folder)
    return root
