"""How much disk the preprocessing cache will take, said before it is written and checked against free space.

BraTS 2021's 1,251 cases of 4 x 240 x 240 x 155 make up to about 190 GB of float32 cache before the head
crop; a run that fills the disk half-way through preprocessing wastes an hour and may break other
work on the machine. The estimate reads only the NIfTI headers (no voxel data): float32 per channel
and one byte of labels per voxel of the resampled full grid, an upper bound since the cache keeps
only the head's bounding box (typically 55-70 % of the grid), plus 12 bytes per tumour voxel for the
foreground index that the cache adds and that the estimate cannot know in advance.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.layouts import CaseFiles

MARGIN_BYTES = 1 << 30  # leave 1 GiB for the runs' models and logs


@dataclass(frozen=True)
class CachePlan:
    """The cases still to preprocess, their cache's size at most, and the free space where it goes."""

    cases: int
    already_cached: int
    bytes_at_most: int
    unknown: int  # cases whose files are not NIfTI (DICOM series): not estimated
    free_bytes: int
    folder: Path

    def describe(self) -> str:
        unknown = f" ({self.unknown} DICOM cases not estimated)" if self.unknown else ""
        cached = f", {self.already_cached} already cached" if self.already_cached else ""
        return (f"cache: {self.cases} cases to preprocess{cached}, at most {_gb(self.bytes_at_most)} "
                f"(float32 image + labels before the head crop){unknown}; {_gb(self.free_bytes)} free at {self.folder}")

    @property
    def fits(self) -> bool:
        return self.bytes_at_most + MARGIN_BYTES <= self.free_bytes


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _grid_bytes(case: CaseFiles, target_spacing) -> int | None:
    """Upper bound of one case's cache from its headers: voxels of the resampled grid x (4 C + 1) bytes."""
    import nibabel as nib

    if not all(str(p).endswith((".nii", ".nii.gz")) for p in case.images):
        return None
    channels, shape, spacing = 0, None, None
    for path in case.images:
        try:
            header = nib.load(str(path)).header
        except Exception as err:  # noqa: BLE001 - nibabel raises several kinds for a broken header
            raise DataError(f"{path}: cannot read the NIfTI header ({err})") from None
        dims = header.get_data_shape()
        shape, spacing = dims[:3], header.get_zooms()[:3]
        channels += dims[3] if len(dims) > 3 else 1
    if target_spacing:
        shape = [int(np.ceil(n * float(s) / float(t))) for n, s, t in zip(shape, spacing, target_spacing)]
    return int(np.prod(shape)) * (4 * channels + 1)


def plan_cache(cases, cache_dir, target_spacing=None, is_cached=None) -> CachePlan:
    """Estimate the cache of `cases` (CaseFiles) not yet in `cache_dir` (`is_cached(case)` says which are)."""
    folder = Path(cache_dir)
    todo = [c for c in cases if not (is_cached and is_cached(c))]
    sizes = [_grid_bytes(c, target_spacing) for c in todo]
    existing = folder
    while not existing.exists():
        existing = existing.parent
    return CachePlan(len(todo), len(cases) - len(todo), sum(s for s in sizes if s), sum(s is None for s in sizes),
                     shutil.disk_usage(existing).free, folder)


def check_cache_space(plan: CachePlan) -> None:
    """Refuse, in one line, a cache that would not fit (with a 1 GiB margin) before writing any of it."""
    if plan.cases and not plan.fits:
        raise DataError(f"{plan.folder}: the preprocessing cache needs up to {_gb(plan.bytes_at_most)} for "
                        f"{plan.cases} cases but only {_gb(plan.free_bytes)} is free; point [data] cache_dir "
                        f"at a larger disk or free {_gb(plan.bytes_at_most + MARGIN_BYTES - plan.free_bytes)}")
