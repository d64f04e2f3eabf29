"""Deterministic preprocessing shared by training, inference and evaluation, with a per-case cache.

nnU-Net's recipe for BraTS-like MRI: crop to the bounding box of non-zero voxels (the head), then
z-score each modality over those voxels and set the background to 0. Optional resampling to a
target spacing. The crop box is kept so that predictions can be pasted back into the full grid.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from kerasbrain.data.layouts import Case, CaseFiles, load_case
from kerasbrain.intensity import head_mask, head_statistics, normalize_np

CACHE_VERSION = 2


@dataclass
class Preprocessed:
    """A case ready for the network: cropped image (and labels), its statistics, and how to undo the crop."""

    case_id: str
    image: np.ndarray  # (x, y, z, 4) float32: z-scored (0 outside the head), or raw if normalize=False
    labels: np.ndarray | None  # (x, y, z) uint8 internal labels
    bbox: tuple[tuple[int, int], ...]  # crop box in the canonical full grid
    full_shape: tuple[int, int, int]  # canonical full grid shape (before crop/resampling)
    zoom: tuple[float, float, float] = (1.0, 1.0, 1.0)  # resampling factor applied after the crop
    mean: np.ndarray | None = None  # per-modality head mean of the raw image (C,)
    std: np.ndarray | None = None  # per-modality head std of the raw image (C,)


def nonzero_bbox(image: np.ndarray, margin: int = 0) -> tuple[tuple[int, int], ...]:
    """Bounding box of voxels non-zero in any modality (whole grid if the volume is empty)."""
    mask = head_mask(image)
    if not mask.any():
        return tuple((0, s) for s in mask.shape)
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.flatnonzero(mask.any(axis=other))
        box.append((max(int(nz[0]) - margin, 0), min(int(nz[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def zscore(image: np.ndarray) -> np.ndarray:
    """Per-modality z-score over the head (voxels non-zero in any modality); 0 elsewhere."""
    return normalize_np(image, *head_statistics(image))


def preprocess_case(case: Case, target_spacing: tuple[float, float, float] | None = None,
                    normalize: bool = True) -> Preprocessed:
    """Crop to the head, optionally resample (linear, so the background stays 0), z-score over the head.

    With `normalize=False` the image stays raw and `mean`/`std` say how to normalise it; serving
    clients send such raw windows and the exported graph normalises them.
    """
    bbox = nonzero_bbox(case.image)
    sl = tuple(slice(a, b) for a, b in bbox)
    image = case.image[sl]
    labels = case.labels[sl] if case.labels is not None else None
    zoom = (1.0, 1.0, 1.0)
    if target_spacing is not None:
        zoom = tuple(float(s) / float(t) for s, t in zip(case.grid.spacing, target_spacing))
        if not np.allclose(zoom, 1.0):
            image = ndimage.zoom(image, zoom + (1.0,), order=1)
            if labels is not None:
                labels = ndimage.zoom(labels, zoom, order=0)
    mean, std = head_statistics(image)
    if normalize:
        image = normalize_np(image, mean, std)
    return Preprocessed(case.case_id, np.ascontiguousarray(image, dtype=np.float32), labels, bbox,
                        tuple(case.image.shape[:3]), zoom, mean, std)


def _cache_key(case: CaseFiles, target_spacing) -> str:
    parts = [str(CACHE_VERSION), repr(target_spacing)]
    for p in case.images + ((case.label,) if case.label else ()):
        st = os.stat(p)
        parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def cache_folder(case: CaseFiles, cache_dir: str | Path, target_spacing=None) -> Path:
    """Where `case`'s cache lives (complete once it holds meta.json)."""
    return Path(cache_dir) / f"{case.case_id}-{_cache_key(case, target_spacing)}"


def is_cached(case: CaseFiles, cache_dir: str | Path, target_spacing=None) -> bool:
    return (cache_folder(case, cache_dir, target_spacing) / "meta.json").is_file()


def cached_preprocess(case: CaseFiles, cache_dir: str | Path, target_spacing=None) -> Path:
    """Preprocess `case` once and store it as `.npy` files (memory-mappable); return the folder.

    The cache key includes file sizes and modification times, so an edited input is re-read.
    """
    folder = cache_folder(case, cache_dir, target_spacing)
    if (folder / "meta.json").is_file():
        return folder
    pre = preprocess_case(load_case(case), target_spacing)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "image.npy", pre.image)
    if pre.labels is not None:
        np.save(tmp / "labels.npy", pre.labels)
        fg = np.argwhere(pre.labels > 0).astype(np.int32)
        np.save(tmp / "foreground.npy", fg)
    meta = {"case_id": pre.case_id, "bbox": pre.bbox, "full_shape": pre.full_shape, "zoom": pre.zoom}
    if pre.labels is not None:
        meta["labels_present"] = labels_present(pre.labels)
    (tmp / "meta.json").write_text(json.dumps(meta))
    if folder.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp)
    else:
        os.replace(tmp, folder)
    return folder


def labels_present(labels: np.ndarray) -> list[int]:
    """The internal labels other than background that a label volume holds."""
    return [int(v) for v in np.flatnonzero(np.bincount(np.ravel(labels))) if v > 0]  # no widened copy


def cached_labels_present(folder: str | Path) -> list[int]:
    """`labels_present` of a cached case: from its meta.json, or counted in its labels.npy for a cache
    written before meta.json recorded them."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    if "labels_present" in meta:
        return meta["labels_present"]
    return labels_present(np.load(folder / "labels.npy", mmap_mode="r")) if (folder / "labels.npy").exists() else []


def load_cached(folder: str | Path, mmap: bool = True) -> Preprocessed:
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    mode = "r" if mmap else None
    labels = folder / "labels.npy"
    return Preprocessed(
        meta["case_id"],
        np.load(folder / "image.npy", mmap_mode=mode),
        np.load(labels, mmap_mode=mode) if labels.exists() else None,
        tuple(tuple(b) for b in meta["bbox"]),
        tuple(meta["full_shape"]),
        tuple(meta["zoom"]),
    )
