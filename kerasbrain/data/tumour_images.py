"""Readers for the 4-class tumour image datasets: BRISC 2025 and the Kaggle class folders (seed 000).

BRISC 2025 (`brisc2025/`):
    classification_task/{train,test}/{glioma,meningioma,no_tumor,pituitary}/*.jpg
    segmentation_task/{train,test}/images/*.jpg  and  .../masks/<same stem>.png  (tumour classes only)
    file names carry the class: brisc2025_train_00010_gl_ax_t1.jpg (gl, me, pi, no)
Kaggle 4-class (seed 000): `Training/` and `Testing/`, one folder per class (glioma, meningioma,
notumor, pituitary, or the older glioma_tumor, meningioma_tumor, no_tumor, pituitary_tumor).

An image found in both BRISC tasks (same stem) becomes one sample with a class and a mask. Images
of any size, grayscale or colour, JPEG/PNG/TIFF, are read as RGB uint8 and resized to a square
side by `prepare_image`, the one resizing function of training, evaluation, prediction and the
serving clients. Unreadable or empty files, masks of another size than their image, and class
codes that contradict their folder are errors naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasbrain.data.classes import BRISC_CODES, CLASSES, class_index
from kerasbrain.data.errors import DataError
from kerasbrain.data.pictures import PICTURE_SUFFIXES, read_grey, read_rgb

_BRISC_CODE = re.compile(r"_(gl|me|pi|no)(?:_|$)")


@dataclass(frozen=True)
class ImageSample:
    """One image: its class (None when unknown), its tumour mask file (None when there is none)."""

    id: str  # the file stem, unique within a dataset
    image: Path
    label: int | None
    mask: Path | None
    subset: str  # "train" or "test", as the dataset ships it


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)


def _brisc_code(path: Path) -> int | None:
    match = _BRISC_CODE.search(path.stem)
    return BRISC_CODES[match.group(1)] if match else None


def find_brisc_root(root: Path) -> Path | None:
    for candidate in (root, root / "brisc2025"):
        if (candidate / "classification_task").is_dir() or (candidate / "segmentation_task").is_dir():
            return candidate
    return None


def discover_brisc(root: str | Path) -> list[ImageSample]:
    """Every BRISC 2025 image, with its class and, for segmentation-task images, its mask."""
    root = find_brisc_root(Path(root))
    if root is None:
        raise DataError("no BRISC 2025 layout found (expected classification_task/ or segmentation_task/)")
    samples: dict[tuple[str, str], dict] = {}
    for subset in ("train", "test"):
        task = root / "classification_task" / subset
        for folder in sorted(p for p in task.iterdir() if p.is_dir()) if task.is_dir() else []:
            label = class_index(folder.name)
            if label is None:
                raise DataError(f"{folder}: unknown class folder; expected one of {', '.join(CLASSES)}")
            for path in _images(folder):
                code = _brisc_code(path)
                if code is not None and code != label:
                    raise DataError(f"{path}: file name says {CLASSES[code]} but the folder says {CLASSES[label]}")
                samples[(subset, path.stem)] = {"image": path, "label": label, "mask": None}
        seg = root / "segmentation_task" / subset
        if (seg / "images").is_dir():
            for path in _images(seg / "images"):
                mask = seg / "masks" / f"{path.stem}.png"
                if not mask.exists():
                    raise DataError(f"{path}: has no mask {mask}")
                entry = samples.setdefault((subset, path.stem), {"image": path, "label": _brisc_code(path)})
                entry["mask"] = mask
    if not samples:
        raise DataError(f"{root}: no BRISC 2025 images found")
    return [ImageSample(stem, e["image"], e["label"], e["mask"], subset)
            for (subset, stem), e in sorted(samples.items())]


def discover_class_folders(root: str | Path) -> list[ImageSample]:
    """Every image of the Kaggle 4-class layout (`Training/`, `Testing/`, one folder per class)."""
    root = Path(root)
    samples = []
    for subset, name in (("train", "Training"), ("test", "Testing")):
        split = root / name
        if not split.is_dir():
            continue
        for folder in sorted(p for p in split.iterdir() if p.is_dir()):
            label = class_index(folder.name)
            if label is None:
                raise DataError(f"{folder}: unknown class folder; expected glioma, meningioma, notumor, "
                                "pituitary (or the *_tumor / no_tumor spellings)")
            samples += [ImageSample(f"{name}/{folder.name}/{p.stem}", p, label, None, subset) for p in _images(folder)]
    if not samples:
        raise DataError(f"{root}: no class-folder images found (expected Training/<class>/ and Testing/<class>/)")
    return samples


def discover_tumour_images(root: str | Path) -> list[ImageSample]:
    """BRISC 2025 or Kaggle class folders, whichever `root` (or its child folder) holds."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    if find_brisc_root(root) is not None:
        return discover_brisc(root)
    if (root / "Training").is_dir() or (root / "Testing").is_dir():
        return discover_class_folders(root)
    raise DataError(f"{root}: neither a BRISC 2025 folder (classification_task/, segmentation_task/) "
                    "nor a class-folder dataset (Training/, Testing/)")


def read_binary_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as (H, W) uint8 0/1; its size must be the image's `shape`."""
    return (read_grey(path, shape, mix_colour=True) > 127).astype(np.uint8)


def prepare_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB uint8 image to `size` x `size` (area averaging when shrinking), still uint8 0-255."""
    import cv2

    if image.shape[:2] == (size, size):
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def prepare_mask(mask: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)


def load_samples(samples: list[ImageSample], size: int, progress=None):
    """Arrays for training or evaluation: images (N, size, size, 3) uint8, labels (N,) int (-1 = none),
    masks (N, size, size, 1) uint8 (zeros = none), has_mask (N,) bool."""
    images = np.zeros((len(samples), size, size, 3), np.uint8)
    masks = np.zeros((len(samples), size, size, 1), np.uint8)
    labels = np.full(len(samples), -1, np.int64)
    has_mask = np.zeros(len(samples), bool)
    for i, sample in enumerate(samples):
        rgb = read_rgb(sample.image)
        images[i] = prepare_image(rgb, size)
        if sample.label is not None:
            labels[i] = sample.label
        if sample.mask is not None:
            masks[i, ..., 0] = prepare_mask(read_binary_mask(sample.mask, rgb.shape[:2]), size)
            has_mask[i] = True
        if progress and (i + 1) % 200 == 0:
            progress(f"read {i + 1}/{len(samples)} images")
    return images, labels, masks, has_mask


def stratified_split(samples: list[ImageSample], validation_fraction: float, seed: int) -> dict[str, list[str]]:
    """Sample ids per subset: the shipped test set stays test; train is split into train and
    validation within each stratum (class x has-mask), seeded, every stratum of 2+ images giving
    at least one validation image."""
    pool = [s for s in samples if s.subset == "train"]
    if not pool:
        raise DataError("the dataset has no training images")
    rng = np.random.default_rng(seed)
    strata: dict[str, list[str]] = {}
    for s in pool:
        strata.setdefault(f"{s.label}-{s.mask is not None}", []).append(s.id)
    train, validation = [], []
    for key in sorted(strata):
        ids = sorted(strata[key])
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n_val = max(1, round(validation_fraction * len(ids))) if validation_fraction > 0 and len(ids) >= 2 else 0
        validation += ids[:n_val]
        train += ids[n_val:]
    return {"train": sorted(train), "validation": sorted(validation),
            "test": sorted(s.id for s in samples if s.subset == "test")}
