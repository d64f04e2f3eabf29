"""A DICOM study (a folder or a zip) as one four-modality case on one reference grid.

The four modalities are chosen by `modalities.assign_modalities`; each is read by `series.read_volume`;
series on other grids are resampled (trilinear, in world coordinates) onto the reference series'
grid (T1 post-contrast by default) when they share its FrameOfReferenceUID, or after a rigid
registration (SimpleITK, mutual information) when asked. What is needed to write results back as
DICOM (the reference series' headers, in slice order) travels with the study.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasbrain.data.dicom.modalities import assign_modalities, parse_overrides
from kerasbrain.data.dicom.series import SeriesVolume, read_volume, scan_series
from kerasbrain.data.errors import DataError
from kerasbrain.data.layouts import MODALITIES

#: Share of the volume's outer faces that may be non-zero before the input looks not skull-stripped.
BORDER_TOLERANCE = 0.01
#: Largest zip a study may unpack to, in bytes (a zip bomb is refused before it is unpacked).
MAX_UNPACKED_BYTES = 8 * 1024**3


@dataclass
class DicomStudy:
    """Four modalities on the reference grid, with what writing results back needs."""

    name: str
    image: np.ndarray  # (columns, rows, slices, 4) float32 in MODALITIES order, the reference series' voxels
    affine: np.ndarray  # RAS voxel-to-world of the reference grid
    reference: SeriesVolume  # the series whose grid the image is on
    reference_headers: list  # pydicom Datasets (no pixels) of the reference frames' files, in slice order
    series: dict[str, SeriesVolume]  # modality -> the series read
    labels: np.ndarray | None = None  # internal labels on the reference grid, from a SEG drawn on it
    lines: list[str] = field(default_factory=list)  # which series became which modality, and how
    warnings: list[str] = field(default_factory=list)


def is_dicom_study(path) -> bool:
    """Whether `path` looks like a DICOM study: a zip, or a folder holding a DICOM file (checked by magic)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip" or _has_magic(path)
    if not path.is_dir():
        return False
    for i, member in enumerate(p for p in path.rglob("*") if p.is_file()):
        if _has_magic(member) or member.suffix.lower() == ".dcm":
            return True
        if i > 50:
            return False
    return False


def study_uid(folder) -> str | None:
    """The StudyInstanceUID of the first DICOM file under `folder` (None when there is none)."""
    import pydicom

    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        if _has_magic(path):
            try:
                return str(pydicom.dcmread(path, stop_before_pixels=True).get("StudyInstanceUID", ""))
            except Exception:
                return None
    return None


def _has_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


@contextmanager
def study_files(path):
    """The files of a study given as a folder or a zip (unpacked to a temporary folder, checked first)."""
    path = Path(path)
    if path.is_dir():
        yield sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return
    if not zipfile.is_zipfile(path):
        yield [path]
        return
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        for member in members:
            name = Path(member.filename)
            if name.is_absolute() or ".." in name.parts or member.filename.startswith(("/", "\\")):
                raise DataError(f"{path}: member {member.filename!r} would be written outside the study's folder")
        total = sum(m.file_size for m in members)
        if total > MAX_UNPACKED_BYTES:
            raise DataError(f"{path}: unpacks to {total / 1e9:.1f} GB, over the "
                            f"{MAX_UNPACKED_BYTES / 1e9:.0f} GB limit")
        folder = Path(tempfile.mkdtemp(prefix="kerasbrain-dicom-"))
        try:
            try:
                archive.extractall(folder, members)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"{path}: the zip cannot be unpacked ({exc})") from None
            yield sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def resample_to(volume: np.ndarray, affine: np.ndarray, shape, target_affine: np.ndarray) -> np.ndarray:
    """`volume` (on `affine`) sampled trilinearly at the voxel centres of `target_affine`'s grid; 0 outside."""
    from scipy import ndimage

    to_source = np.linalg.inv(affine) @ target_affine
    out = np.empty(tuple(shape), dtype=np.float32)
    # interpolating zeros in oblique coordinates leaves round-off (1e-12) where the background should be
    # 0; the head mask (non-zero voxels) would take it for head, so values that small are set to 0
    floor = 1e-6 * float(np.abs(volume).max())
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    for k in range(shape[2]):  # one slice at a time keeps the coordinate arrays small
        points = np.stack([i.ravel(), j.ravel(), np.full(i.size, k), np.ones(i.size)])
        coords = (to_source @ points)[:3]
        out[:, :, k] = ndimage.map_coordinates(volume, coords, order=1, mode="constant", cval=0.0).reshape(i.shape)
    out[np.abs(out) < floor] = 0.0
    return out


def register_rigid(fixed: SeriesVolume, moving: SeriesVolume) -> np.ndarray:
    """A rigid (Euler) registration of `moving` onto `fixed` by Mattes mutual information (SimpleITK).

    Returns `moving` resampled onto `fixed`'s grid (linear interpolation, 0 outside).
    """
    from kerasbrain.data.registration import resample_onto, rigid_transform, to_itk

    for volume in (fixed, moving):
        if volume.tilt_degrees > 0.1:
            raise DataError(f"series {volume.info.label}: a gantry-tilted series cannot be registered; "
                            "resample it first")
    fixed_image = to_itk(fixed.data.astype(np.float32), fixed.affine)
    moving_image = to_itk(moving.data.astype(np.float32), moving.affine)
    transform = rigid_transform(fixed_image, moving_image)
    return resample_onto(moving_image, fixed_image, transform).astype(np.float32)


def _reference_headers(volume: SeriesVolume) -> list:
    """The headers (no pixels, as the scan read them) of the reference frames' files, in slice order."""
    return list({frame.path: volume.info.headers[frame.path] for frame in volume.frames}.values())


def border_warning(image: np.ndarray, name: str) -> str | None:
    """One line when the volume's outer faces are not empty: BraTS-like input is skull-stripped."""
    nonzero = np.abs(image).max(axis=-1) > 0
    faces = [nonzero[0], nonzero[-1], nonzero[:, 0], nonzero[:, -1], nonzero[:, :, 0], nonzero[:, :, -1]]
    share = sum(float(f.sum()) for f in faces) / sum(f.size for f in faces)
    if share > BORDER_TOLERANCE:
        return (f"{name}: {share:.0%} of the volume's border voxels are non-zero; the model expects skull-stripped, "
                "co-registered input as BraTS provides (see README, DICOM)")
    return None


def load_study(path, series=(), reference: str = "T1Gd", register: bool = False, progress=None) -> DicomStudy:
    """Read a DICOM study into a `DicomStudy`; every fault is one `DataError` line naming the file or series."""
    path = Path(path)
    if reference not in MODALITIES:
        raise DataError(f"--reference {reference}: expected one of {', '.join(MODALITIES)}")
    overrides = parse_overrides(series)
    name = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    with study_files(path) as files:
        found, notes, segmentations = scan_series(files)
        if not found:
            what = "; ".join(notes) or "no files"
            raise DataError(f"{path}: no DICOM image series found ({what})")
        chosen, lines = assign_modalities(found, overrides)
        volumes = {}
        for modality, info in chosen.items():
            if progress:
                progress(f"{name}: reading {modality}")
            volumes[modality] = read_volume(info)
        ref = volumes[reference]
        headers = _reference_headers(ref)
        labels = _truth(segmentations, ref, lines)
    shape = ref.data.shape
    channels, warnings = [], []
    for modality in MODALITIES:
        volume = volumes[modality]
        same_grid = volume.data.shape == shape and np.allclose(volume.affine, ref.affine, atol=1e-3)
        same_frame = volume.info.frame_of_reference == ref.info.frame_of_reference
        if same_frame and same_grid:
            channels.append(volume.data)
        elif same_frame and volume.info.frame_of_reference:
            lines.append(f"{modality:>5} resampled onto the {reference} grid (same frame of reference)")
            channels.append(resample_to(volume.data, volume.affine, shape, ref.affine))
        elif register:
            lines.append(f"{modality:>5} registered rigidly onto the {reference} series "
                         "(different frames of reference)")
            channels.append(register_rigid(ref, volume))
        else:
            raise DataError(f"series {volume.info.label} ({modality}) and {ref.info.label} ({reference}) have "
                            "different frames of reference; pass --register to align them rigidly")
    image = np.stack(channels, axis=-1).astype(np.float32)
    warning = border_warning(image, str(path))
    if warning:
        warnings.append(warning)
    return DicomStudy(name, image, ref.affine, ref, headers, volumes, labels=labels, lines=lines + notes,
                      warnings=warnings)


def _truth(segmentations, reference: SeriesVolume, lines: list[str]) -> np.ndarray | None:
    """The labels of the one SEG in the study drawn on the reference series (None when there is none)."""
    from kerasbrain.data.dicom.seg import read_segmentation, references_series

    drawn = [p for p in segmentations if references_series(p, reference.info.uid)]
    if len(drawn) > 1:
        lines.append(f"{len(drawn)} segmentations refer to the reference series; none is used as its labels")
        return None
    if not drawn:
        return None
    lines.append(f"labels <- segmentation {drawn[0].name} (drawn on the reference series)")
    return read_segmentation(drawn[0], reference)
