"""One DICOM image series as a volume with its world geometry (read with pydicom).

Files are grouped by SeriesInstanceUID; frames are ordered by their position along the slice
normal (never by file name or InstanceNumber); RescaleSlope / RescaleIntercept are applied per
frame; the geometry comes from ImagePositionPatient, ImageOrientationPatient and PixelSpacing and
is turned from DICOM's LPS into the RAS world that NIfTI and the rest of kerasbrain use. Single-frame
series and enhanced multi-frame images (per-frame and shared functional groups) are both read.

One module on purpose: the header scan, the slice ordering and the pixel reading share the
`Frame` / `SeriesInfo` records and the geometry rules, and read best together (about 300 lines).

The volume's voxel axes are (column, row, slice), as ITK and nibabel order a DICOM series, so a
voxel (i, j, k) sits at `affine @ (i, j, k, 1)` in RAS millimetres. A gantry tilt makes the slice
step oblique to the image plane; the affine then carries that shear exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError

#: DICOM patient coordinates are LPS; kerasbrain's world (NIfTI's) is RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Largest relative difference between slice gaps before a series is called uneven (missing slices).
SPACING_TOLERANCE = 0.05
#: Largest difference (in direction cosines) between two frames still called the same orientation.
ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Frame:
    """One image plane: where it comes from and where it is."""

    path: Path
    index: int | None  # frame number in a multi-frame file (0-based); None for a single-frame file
    sop_instance_uid: str
    orientation: tuple[float, ...]  # ImageOrientationPatient: row cosines, then column cosines (LPS)
    position: tuple[float, float, float]  # ImagePositionPatient (LPS mm)
    spacing: tuple[float, float]  # PixelSpacing: between rows, between columns (mm)
    shape: tuple[int, int]  # rows, columns
    slope: float = 1.0
    intercept: float = 0.0


@dataclass
class SeriesInfo:
    """A series as found in the files: what modality rules read, and its frames (unordered)."""

    uid: str
    study_uid: str
    frame_of_reference: str
    number: int | None
    description: str
    protocol: str
    sequence: str  # SequenceName / PulseSequenceName
    scanning_sequence: str
    repetition_time: float | None
    echo_time: float | None
    inversion_time: float | None
    contrast_agent: str
    image_type: str
    frames: list[Frame] = field(default_factory=list)
    headers: dict = field(default_factory=dict, repr=False)  # path -> pydicom header (no pixels), read once

    @property
    def label(self) -> str:
        """How the series is named in messages: number, description and UID."""
        number = f"#{self.number} " if self.number is not None else ""
        return f"{number}{self.description or self.protocol or '(no description)'!r} ({self.uid})"


@dataclass
class SeriesVolume:
    """A series read into a volume: float32 (columns, rows, slices) and its RAS voxel-to-world affine."""

    info: SeriesInfo
    data: np.ndarray
    affine: np.ndarray
    frames: list[Frame]  # in slice order (k = 0, 1, ...)

    @property
    def tilt_degrees(self) -> float:
        """Angle between the slice step and the image-plane normal (a gantry tilt), in degrees."""
        step, normal = self.affine[:3, 2], np.cross(self.affine[:3, 0], self.affine[:3, 1])
        cos = abs(step @ normal) / (np.linalg.norm(step) * np.linalg.norm(normal))
        return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _number(value) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _text(ds, *keywords) -> str:
    return " ".join(str(ds.get(k, "") or "") for k in keywords).strip()


def _item(ds, sequence: str):
    value = ds.get(sequence)
    return value[0] if value else None


def _functional(groups, sequence: str, keyword: str):
    """`keyword` from the first of `groups` (per-frame, then shared functional groups) that has it."""
    for group in groups:
        item = _item(group, sequence) if group is not None else None
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


def _series_info(ds) -> SeriesInfo:
    enhanced = _item(ds, "SharedFunctionalGroupsSequence")
    mr = _item(enhanced, "MRTimingAndRelatedParametersSequence") if enhanced is not None else None
    tr = _number(ds.get("RepetitionTime") if "RepetitionTime" in ds else (mr.get("RepetitionTime") if mr else None))
    echo = _item(enhanced, "MREchoSequence") if enhanced is not None else None
    te = _number(ds.get("EchoTime")) if "EchoTime" in ds else _number(echo.get("EffectiveEchoTime") if echo else None)
    inversion = _number(ds.get("InversionTime"))
    if inversion is None and enhanced is not None:
        modifier = _item(enhanced, "MRModifierSequence")
        times = modifier.get("InversionTimes") if modifier is not None else None
        inversion = _number(times[0]) if times else None
    contrast = _text(ds, "ContrastBolusAgent")
    if not contrast and enhanced is not None and _item(enhanced, "ContrastBolusUsageSequence") is not None:
        contrast = "yes"
    number = ds.get("SeriesNumber")
    return SeriesInfo(
        uid=str(ds.SeriesInstanceUID), study_uid=str(ds.get("StudyInstanceUID", "")),
        frame_of_reference=str(ds.get("FrameOfReferenceUID", "")),
        number=int(number) if number not in (None, "") else None,
        description=_text(ds, "SeriesDescription"), protocol=_text(ds, "ProtocolName"),
        sequence=_text(ds, "SequenceName", "PulseSequenceName"), scanning_sequence=_text(ds, "ScanningSequence"),
        repetition_time=tr, echo_time=te, inversion_time=inversion, contrast_agent=contrast,
        image_type="\\".join(str(v) for v in (ds.get("ImageType") or [])),
    )


def _frames_of(ds, path: Path) -> list[Frame]:
    """The image planes a file holds, with their geometry (single- or multi-frame)."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    frames = []
    for f in range(count):
        groups = ((per_frame[f] if per_frame is not None and f < len(per_frame) else None), shared)
        if per_frame is None and shared is None:
            orientation, position = ds.get("ImageOrientationPatient"), ds.get("ImagePositionPatient")
            spacing = ds.get("PixelSpacing")
            slope, intercept = ds.get("RescaleSlope", 1), ds.get("RescaleIntercept", 0)
            if count > 1:
                raise DataError(f"{path}: a multi-frame image without functional groups has one position for "
                                f"{count} frames; its slices cannot be placed")
        else:
            orientation = _functional(groups, "PlaneOrientationSequence", "ImageOrientationPatient")
            position = _functional(groups, "PlanePositionSequence", "ImagePositionPatient")
            spacing = _functional(groups, "PixelMeasuresSequence", "PixelSpacing")
            slope = _functional(groups, "PixelValueTransformationSequence", "RescaleSlope")
            intercept = _functional(groups, "PixelValueTransformationSequence", "RescaleIntercept")
            slope = ds.get("RescaleSlope", 1) if slope is None else slope
            intercept = ds.get("RescaleIntercept", 0) if intercept is None else intercept
        missing = [name for name, value in (("ImageOrientationPatient", orientation),
                                            ("ImagePositionPatient", position), ("PixelSpacing", spacing))
                   if value is None or len(value) == 0]
        if missing:
            where = f" (frame {f + 1})" if count > 1 else ""
            raise DataError(f"{path}{where}: no {', '.join(missing)}; the image cannot be placed in space")
        try:
            orientation = tuple(float(v) for v in orientation)
            position = tuple(float(v) for v in position)
            spacing = tuple(float(v) for v in spacing)
            slope, intercept = float(slope), float(intercept)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: unreadable geometry or rescale values ({exc})") from None
        if len(orientation) != 6 or len(position) != 3 or len(spacing) != 2 or min(spacing) <= 0:
            raise DataError(f"{path}: malformed geometry (orientation {orientation}, position {position}, "
                            f"spacing {spacing})")
        frames.append(Frame(path, f if count > 1 else None, str(ds.SOPInstanceUID), orientation, position,
                            spacing, (rows, columns), slope, intercept))
    return frames


SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def scan_series(paths) -> tuple[dict[str, SeriesInfo], list[str], list[Path]]:
    """Read every file's header (no pixels) and group the image frames by SeriesInstanceUID.

    Returns the series, the notes on what was passed over (non-DICOM files, objects without
    pixels such as structured reports or a DICOMDIR), and the DICOM Segmentations found (kept
    apart: a SEG is a label map, not an image). A file that starts as DICOM but cannot be parsed
    (truncated) is an error naming it.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, SeriesInfo] = {}
    skipped: dict[str, int] = {}
    segmentations: list[Path] = []
    for path in paths:
        path = Path(path)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            skipped["not DICOM"] = skipped.get("not DICOM", 0) + 1
            continue
        except Exception as exc:  # pydicom raises many types for a truncated or corrupt file
            raise DataError(f"{path}: cannot be read as DICOM ({type(exc).__name__}: {exc})") from None
        if "SeriesInstanceUID" not in ds or "Rows" not in ds or "SOPInstanceUID" not in ds:
            kind = str(ds.get("SOPClassUID", "")) and getattr(ds.SOPClassUID, "name", str(ds.SOPClassUID))
            reason = f"no image ({kind})" if kind else "no image"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        if str(ds.get("SOPClassUID", "")) == SEGMENTATION_STORAGE:
            segmentations.append(path)
            continue
        uid = str(ds.SeriesInstanceUID)
        if uid not in series:
            series[uid] = _series_info(ds)
        series[uid].frames.extend(_frames_of(ds, path))
        series[uid].headers[path] = ds
    notes = [f"{n} file(s) passed over: {reason}" for reason, n in sorted(skipped.items())]
    return series, notes, segmentations


def _ordered(info: SeriesInfo) -> tuple[list[Frame], np.ndarray]:
    """The frames in slice order and the series' LPS voxel-to-world affine; refuses what cannot be a volume."""
    frames = info.frames
    first = frames[0]
    for frame in frames[1:]:
        if np.abs(np.subtract(frame.orientation, first.orientation)).max() > ORIENTATION_TOLERANCE:
            raise DataError(f"series {info.label}: mixed orientations ({frame.path} differs from {first.path}); "
                            "one volume has one orientation")
        if frame.shape != first.shape or np.abs(np.subtract(frame.spacing, first.spacing)).max() > 1e-3:
            raise DataError(f"series {info.label}: {frame.path} has {frame.shape[0]} x {frame.shape[1]} pixels of "
                            f"{frame.spacing} mm, {first.path} {first.shape[0]} x {first.shape[1]} of "
                            f"{first.spacing} mm; one volume has one pixel grid")
    if len(frames) < 2:
        raise DataError(f"series {info.label}: one image ({first.path}); a volume needs at least two slices")
    row, column = np.asarray(first.orientation[:3]), np.asarray(first.orientation[3:])
    normal = np.cross(row, column)
    depth = np.array([np.dot(f.position, normal) for f in frames])
    order = np.argsort(depth, kind="stable")
    frames, depth = [frames[i] for i in order], depth[order]
    gaps = np.diff(depth)
    smallest = float(min(first.spacing))
    duplicate = np.flatnonzero(gaps < 1e-3 * smallest)
    if duplicate.size:
        a, b = frames[duplicate[0]], frames[duplicate[0] + 1]
        raise DataError(f"series {info.label}: {a.path} and {b.path} lie at the same position "
                        f"({depth[duplicate[0]]:.2f} mm along the slice normal); duplicate slices or several "
                        "volumes (echoes, time points) in one series")
    median = float(np.median(gaps))
    uneven = np.flatnonzero(np.abs(gaps - median) > SPACING_TOLERANCE * median)
    if uneven.size:
        k = int(uneven[0])
        raise DataError(f"series {info.label}: the gap between slices {k + 1} and {k + 2} ({frames[k + 1].path}) is "
                        f"{gaps[k]:.2f} mm where the others are {median:.2f} mm; missing slices or uneven spacing")
    origin = np.asarray(frames[0].position)
    step = (np.asarray(frames[-1].position) - origin) / (len(frames) - 1)
    d_row, d_col = first.spacing  # PixelSpacing: between rows (along columns), between columns (along rows)
    affine = np.eye(4)
    affine[:3, 0] = row * d_col  # +i: the next column, along the row direction
    affine[:3, 1] = column * d_row  # +j: the next row, along the column direction
    affine[:3, 2] = step
    affine[:3, 3] = origin
    return frames, affine


def _pixels(path: Path, index: int | None, cache: dict) -> np.ndarray:
    """One frame's stored values (rows, columns), decoded by pydicom's installed handlers."""
    import pydicom

    if path not in cache:
        cache.clear()  # multi-frame files are read once; single-frame files one after another
        try:
            ds = pydicom.dcmread(path)
            cache[path] = ds.pixel_array
        except Exception as exc:  # a truncated pixel stream, a transfer syntax no installed handler decodes
            syntax = ""
            try:
                syntax = f", transfer syntax {ds.file_meta.TransferSyntaxUID.name}"
            except Exception:
                pass
            raise DataError(f"{path}: the pixel data cannot be decoded{syntax} ({type(exc).__name__}: {exc})") from None
    pixels = cache[path]
    if index is not None:
        pixels = pixels[index]
    if pixels.ndim != 2:
        raise DataError(f"{path}: expected a grey-level image, found pixel data of shape {pixels.shape}")
    return pixels


def read_volume(info: SeriesInfo) -> SeriesVolume:
    """Read a series' pixels into a float32 (columns, rows, slices) volume with its RAS affine."""
    frames, affine_lps = _ordered(info)
    rows, columns = frames[0].shape
    data = np.empty((columns, rows, len(frames)), dtype=np.float32)
    cache: dict = {}
    for k, frame in enumerate(frames):
        pixels = _pixels(frame.path, frame.index, cache)
        if pixels.shape != (rows, columns):
            raise DataError(f"{frame.path}: pixel data of shape {pixels.shape}, the header says {rows} x {columns}")
        data[:, :, k] = (pixels.astype(np.float64) * frame.slope + frame.intercept).T
    if not np.isfinite(data).all():
        raise DataError(f"series {info.label}: rescaling gives NaN/Inf values")
    return SeriesVolume(info, data, LPS_TO_RAS @ affine_lps, frames)
