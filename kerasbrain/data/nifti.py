"""Reading and writing NIfTI volumes with validation and a canonical (RAS+) orientation.

Networks see every volume in RAS+ voxel order so that left/right means the same thing for all
cases; predictions are mapped back to the input's own voxel grid and written with its affine and
header, so they overlay the original scan in any viewer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations

from kerasbrain.data.errors import DataError
from kerasbrain.files import atomic_write


@dataclass(frozen=True)
class Grid:
    """The voxel grid of an input file: what is needed to write a result back into its space."""

    shape: tuple[int, ...]
    affine: np.ndarray  # voxel -> RAS world (mm)
    header: nib.Nifti1Header | None  # the NIfTI header to write back with; None for other formats (DICOM)
    source: str

    @property
    def to_canonical(self) -> np.ndarray:
        """Orientation transform (nibabel ornt) from this grid to RAS+."""
        return orientations.ornt_transform(
            orientations.io_orientation(self.affine), orientations.axcodes2ornt("RAS")
        )

    @property
    def canonical_affine(self) -> np.ndarray:
        """Voxel -> world (mm) for the RAS+ array `to_canonical` makes (positions of canonical voxels)."""
        return np.asarray(self.affine, float) @ orientations.inv_ornt_aff(self.to_canonical, self.shape[:3])

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along the canonical axes."""
        if self.header is not None:
            zooms = np.asarray(self.header.get_zooms()[:3], dtype=float)
        else:  # the length of each voxel axis in world space
            zooms = np.linalg.norm(np.asarray(self.affine, dtype=float)[:3, :3], axis=0)
        axes = orientations.io_orientation(self.affine)[:, 0].astype(int)
        canonical = np.empty(3)
        canonical[axes] = zooms
        return tuple(canonical.tolist())


#: Deflate never compresses better than 1032:1, so a .nii.gz whose header promises more data than
#: 1032 times its size is lying, whatever its trailer says.
DEFLATE_MAX_RATIO = 1032


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _check_header(path: Path, image, allowed: tuple[int, ...]) -> None:
    """Refuse a file whose header cannot be right, before its voxels are read (or allocated)."""
    header = image.header
    shape = tuple(int(s) for s in header.get_data_shape())
    if len(shape) not in allowed:
        raise DataError(f"{path}: expected a {' or '.join(map(str, allowed))}-D volume, found shape {shape}")
    if not shape or min(shape) < 1:
        raise DataError(f"{path}: the header gives an empty shape {shape}")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(header.get_data_dtype()).itemsize
    offset = int(header.get("vox_offset", 0)) if "vox_offset" in header else 0
    size = path.stat().st_size
    if path.name.endswith(".gz"):
        if expected > DEFLATE_MAX_RATIO * size:
            raise DataError(f"{path}: truncated, or its header is wrong: the header promises {_bytes(expected)} of "
                            f"voxels (shape {shape}), more than a {_bytes(size)} gzip file can hold")
        if expected + offset < 2**32:
            with open(path, "rb") as f:  # gzip's trailer: the uncompressed size mod 2^32
                f.seek(-4, os.SEEK_END)
                stored = int.from_bytes(f.read(4), "little")
            if stored < expected + offset:  # truncated data or a lying header
                raise DataError(f"{path}: truncated, or its header is wrong: the header promises "
                                f"{expected + offset} bytes, the gzip stream records {stored}")
    elif expected + offset > size:
        raise DataError(f"{path}: the header promises {expected + offset} bytes (shape {shape}), "
                        f"the file has {size}")
    affine = np.asarray(image.affine, dtype=float)
    if not np.isfinite(affine).all():
        raise DataError(f"{path}: the affine (voxel-to-world matrix) has NaN or Inf entries")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-8:
        raise DataError(f"{path}: the affine (voxel-to-world matrix) is singular: the voxels have no size or "
                        "direction in space")


def load_nifti(path: str | os.PathLike, ndim: int | tuple[int, ...] = 3) -> tuple[np.ndarray, Grid]:
    """Load a NIfTI file as a float32 array, checking that it is readable, finite and of `ndim` dims.

    The header is checked before any voxel is read: dimensions, a size the file can hold (so a
    corrupt header never makes us allocate terabytes) and a finite, non-singular affine.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for truncated or foreign files
        raise DataError(f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc})") from exc
    _check_header(path, image, allowed)
    try:
        data = np.asanyarray(image.dataobj)
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc})") from exc
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise DataError(f"{path}: contains {bad} NaN/Inf voxels")
    grid = Grid(tuple(int(s) for s in data.shape[:3]), image.affine.copy(), image.header.copy(), str(path))
    return data, grid


def to_canonical(data: np.ndarray, grid: Grid) -> np.ndarray:
    """Reorder/flip the first three axes of `data` from the file's grid to RAS+."""
    return orientations.apply_orientation(data, grid.to_canonical)


def from_canonical(data: np.ndarray, grid: Grid) -> np.ndarray:
    """Inverse of `to_canonical`: bring a RAS+ array back to the file's voxel order."""
    inverse = orientations.ornt_transform(
        orientations.axcodes2ornt("RAS"), orientations.io_orientation(grid.affine)
    )
    return orientations.apply_orientation(data, inverse)


def same_grid(a: Grid, b: Grid, atol: float = 1e-3) -> bool:
    """Whether two files share shape and affine (the modalities of one case must)."""
    return a.shape == b.shape and np.allclose(a.affine, b.affine, atol=atol)


def save_nifti(path: str | os.PathLike, data: np.ndarray, grid: Grid, dtype=np.uint8) -> Path:
    """Write `data` (already in the file's voxel order) with `grid`'s affine and header, atomically."""
    if grid.header is not None:
        header = grid.header.copy()
    else:  # a grid read from another format: a fresh header with the grid's affine as sform and qform
        header = nib.Nifti1Header()
        header.set_data_shape(data.shape)
        header.set_xyzt_units("mm", "sec")
    header.set_data_dtype(dtype)
    if data.ndim != len(header.get_data_shape()):
        header.set_data_shape(data.shape)
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), grid.affine, header)
    if dtype in (np.uint8, np.int16, np.int32):
        image.header.set_slope_inter(1, 0)
    return atomic_write(path, lambda tmp: nib.save(image, tmp))
