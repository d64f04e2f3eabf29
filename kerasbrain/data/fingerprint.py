"""A volumetric dataset's fingerprint: what planning a training needs to know about its cases.

nnU-Net plans every dataset from such a fingerprint (spacings, shapes after cropping to the head,
modalities) instead of asking the user for patch and spacing. Each labelled case is read the way
training reads it (`layouts.load_case`, canonical orientation) and cropped to the same head box
(`preprocess.nonzero_bbox`), so the shapes are the ones the training patches are cut from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kerasbrain.data.layouts import discover, load_case
from kerasbrain.data.preprocess import nonzero_bbox


@dataclass(frozen=True)
class CaseFingerprint:
    case_id: str
    spacing: tuple[float, float, float]  # mm along the canonical (RAS+) axes
    shape: tuple[int, int, int]  # the canonical grid
    cropped_shape: tuple[int, int, int]  # the head's bounding box, what training cuts patches from
    modalities: int


@dataclass(frozen=True)
class DatasetFingerprint:
    folder: str
    layout: str
    cases: tuple[CaseFingerprint, ...]

    @property
    def spacings(self) -> np.ndarray:
        """(cases, 3) voxel sizes in mm."""
        return np.array([c.spacing for c in self.cases], dtype=float)

    @property
    def cropped_shapes(self) -> np.ndarray:
        """(cases, 3) head boxes in voxels of each case's own grid."""
        return np.array([c.cropped_shape for c in self.cases], dtype=float)

    @property
    def modalities(self) -> int:
        return self.cases[0].modalities

    def to_dict(self) -> dict:
        return {"folder": self.folder, "layout": self.layout, "cases": [asdict(c) for c in self.cases]}

    @classmethod
    def from_dict(cls, raw: dict) -> DatasetFingerprint:
        cases = tuple(CaseFingerprint(c["case_id"], tuple(c["spacing"]), tuple(c["shape"]), tuple(c["cropped_shape"]),
                                      int(c["modalities"])) for c in raw["cases"])
        return cls(raw["folder"], raw["layout"], cases)


def fingerprint_case(case_files) -> CaseFingerprint:
    """One case's spacing, grid and head box (its images only; labels are not read)."""
    case = load_case(case_files, with_labels=False)
    box = nonzero_bbox(case.image)
    return CaseFingerprint(case.case_id, tuple(round(float(s), 6) for s in case.grid.spacing),
                           tuple(int(n) for n in case.image.shape[:3]), tuple(int(b - a) for a, b in box),
                           int(case.image.shape[-1]))


def fingerprint_dataset(folder, progress=print) -> DatasetFingerprint:
    """Fingerprint every labelled case under `folder` (the cases `train unet3d` would train on)."""
    dataset = discover(folder)
    labelled = dataset.labelled()
    if not labelled:
        raise ValueError(f"{folder}: no labelled cases to plan a training for")
    cases = []
    for i, case_files in enumerate(labelled, 1):
        cases.append(fingerprint_case(case_files))
        if progress:
            c = cases[-1]
            progress(f"fingerprint {i}/{len(labelled)} {c.case_id}: head {list(c.cropped_shape)} voxels of "
                     f"{' x '.join(f'{s:g}' for s in c.spacing)} mm")
    modalities = {c.modalities for c in cases}
    if len(modalities) > 1:
        raise ValueError(f"{folder}: cases have {sorted(modalities)} modalities; run `kerasbrain data check` on it")
    return DatasetFingerprint(str(folder), dataset.layout, tuple(cases))
