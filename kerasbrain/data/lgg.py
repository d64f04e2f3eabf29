"""Reader for Buda's LGG slice dataset (kaggle_3m) with validation, and its patient-level split.

Layout: `kaggle_3m/<PATIENT>/<PATIENT>_<k>.tif` with `<PATIENT>_<k>_mask.tif` beside it; images
are 256 x 256 x 3 uint8 (channels: pre-contrast, FLAIR, post-contrast), masks 0/255. A `data.csv`
beside the patient folders (clinical data) is optional and not needed. Images are returned in the
file's channel order (OpenCV reads BGR; kerasbrain converts back), masks as 0/1 uint8.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.pictures import read_grey, read_rgb

_SLICE = re.compile(r"^(?P<patient>.+)_(?P<index>\d+)\.tif$")
LGG_CHANNELS = ("pre-contrast", "FLAIR", "post-contrast")


@dataclass(frozen=True)
class SliceFiles:
    patient: str
    index: int
    image: Path
    mask: Path | None


def find_root(root: str | Path) -> Path:
    """Accept the dataset folder or its parent (the Kaggle download holds `kaggle_3m/`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    return root / "kaggle_3m" if (root / "kaggle_3m").is_dir() else root


def discover_lgg(root: str | Path, require_masks: bool = True) -> list[SliceFiles]:
    """All slices under `root`, sorted by patient and slice number; a missing mask is an error."""
    root = find_root(root)
    slices = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in folder.glob("*.tif"):
            if path.name.endswith("_mask.tif"):
                continue
            match = _SLICE.match(path.name)
            if not match or match["patient"] != folder.name:
                continue
            mask = path.with_name(path.name[:-4] + "_mask.tif")
            if not mask.exists():
                if require_masks:
                    raise DataError(f"{path}: has no mask {mask.name}")
                mask = None
            slices.append(SliceFiles(folder.name, int(match["index"]), path, mask))
    if not slices:
        raise DataError(f"{root}: no LGG slices found (expected <PATIENT>/<PATIENT>_<k>.tif and _mask.tif)")
    return sorted(slices, key=lambda s: (s.patient, s.index))


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask as (H, W) uint8 in {0, 1}; anything but 0/255 (or 0/1) is an error naming the file."""
    mask = read_grey(path, shape)
    values = set(np.unique(mask).tolist())
    if not values <= {0, 255} and not values <= {0, 1}:
        raise DataError(f"{path}: mask is not binary (values {sorted(values)[:6]}); expected 0 and 255")
    return (mask > 0).astype(np.uint8)


def read_slice(files: SliceFiles) -> tuple[np.ndarray, np.ndarray | None]:
    image = read_rgb(files.image)
    mask = read_mask(files.mask, image.shape[:2]) if files.mask is not None else None
    return image, mask


def has_tumour(files: SliceFiles) -> bool:
    return bool(read_mask(files.mask).any()) if files.mask is not None else False


def patient_split(slices: list[SliceFiles], n_splits: int = 5, fold: int = 0, seed: int = 0,
                  test_fold: int | None = None) -> dict[str, list[str]]:
    """Patient-grouped, tumour-stratified split with scikit-learn's StratifiedGroupKFold.

    Fold `fold` is validation; with `test_fold`, that fold is held out as test; the rest trains.
    Returns patient ids per subset, so no patient is ever in two subsets.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    patients = sorted({s.patient for s in slices})
    if len(patients) < n_splits:
        raise ValueError(f"need at least n_splits={n_splits} patients for a grouped split, found {len(patients)}")
    labels = np.array([has_tumour(s) for s in slices], dtype=int)
    groups = np.array([s.patient for s in slices])
    folds = list(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(
        np.zeros(len(slices)), labels, groups))
    def members(i):
        return sorted(str(g) for g in set(groups[folds[i][1]]))

    validation = members(fold)
    test = members(test_fold) if test_fold is not None else []
    train = [p for p in patients if p not in validation and p not in test]
    return {"train": train, "validation": validation, "test": test}


def save_split(split: dict, path: str | Path) -> None:
    from kerasbrain.files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(split, indent=2)))
