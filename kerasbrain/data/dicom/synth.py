"""Phantom studies written as DICOM MR series (pydicom), so DICOM input is tested like real scanner output.

Each modality becomes one series of single-frame MR images (or one enhanced multi-frame image),
stored as 16-bit integers with a RescaleSlope / RescaleIntercept, with the file names and
InstanceNumbers shuffled so that nothing but the geometry can order the slices. Options give an
oblique orientation, a gantry tilt, a thick-slice FLAIR on its own grid, and a different frame of
reference per series. `write_study` also returns the decoded volumes, so a test can write the same
data as NIfTI and compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasbrain.data.dicom.series import LPS_TO_RAS
from kerasbrain.data.layouts import MODALITIES

#: Names a scanner might give each modality's series (the modality rules must recognise them).
DESCRIPTIONS = {"FLAIR": "AX T2 FLAIR", "T1": "AX T1 SE", "T1Gd": "AX T1 POST GD", "T2": "AX T2 TSE"}
#: Timing per modality (TR, TE, TI ms) loosely after clinical protocols.
TIMING = {"FLAIR": (9000.0, 120.0, 2500.0), "T1": (600.0, 12.0, None), "T1Gd": (600.0, 12.0, None),
          "T2": (4000.0, 100.0, None)}
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


@dataclass
class WrittenSeries:
    """What was written for one modality: its folder, UID, the voxels as a reader should decode them."""

    modality: str
    uid: str
    data: np.ndarray  # (columns, rows, slices) float32, the values the files decode to
    affine: np.ndarray  # RAS voxel-to-world of `data`
    files: list[Path]


def rotation(degrees_xyz) -> np.ndarray:
    """A 3 x 3 rotation by the given angles (degrees) about x, then y, then z."""
    rx, ry, rz = np.radians(degrees_xyz)
    x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    return z @ y @ x


def _quantise(volume: np.ndarray) -> tuple[np.ndarray, float, float]:
    """int16 stored values with slope and intercept, and nothing lost beyond the int16 step."""
    low, high = float(volume.min()), float(volume.max())
    slope = max(high - low, 1e-6) / 30000.0
    stored = np.round((volume - low) / slope).astype(np.int16)
    return stored, slope, low


def _base(modality: str, study: dict, series_uid: str, number: int, frame_of_reference: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName, ds.PatientID = study["patient"], study["patient"]
    ds.PatientBirthDate, ds.PatientSex = "", "O"
    ds.StudyInstanceUID, ds.StudyID = study["uid"], "1"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "120000", ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, number
    ds.SeriesDescription, ds.ProtocolName = DESCRIPTIONS[modality], DESCRIPTIONS[modality]
    ds.Modality, ds.Manufacturer = "MR", "kerasbrain phantom"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    tr, te, ti = TIMING[modality]
    if modality == "T1Gd":
        ds.ContrastBolusAgent = "gadobutrol"
    return ds, (tr, te, ti)


def _file_meta(sop_class: str, sop_uid: str):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _geometry(affine_ras: np.ndarray):
    """Row and column cosines, pixel spacing, slice-0 position and slice step (all LPS) of an affine."""
    lps = LPS_TO_RAS @ affine_ras  # the same flip turns RAS into LPS
    d_col, d_row = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    row_cos, col_cos = lps[:3, 0] / d_col, lps[:3, 1] / d_row
    return row_cos, col_cos, (float(d_row), float(d_col)), lps[:3, 3], lps[:3, 2]


def write_series(folder: Path, modality: str, volume: np.ndarray, affine_ras: np.ndarray, study: dict,
                 number: int, frame_of_reference: str, rng: np.random.Generator, multiframe: bool = False,
                 ) -> WrittenSeries:
    """Write one modality (volume (columns, rows, slices) on `affine_ras`) as a series under `folder`."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    stored, slope, intercept = _quantise(volume)
    decoded = (stored.astype(np.float64) * slope + intercept).astype(np.float32)
    row_cos, col_cos, spacing, origin, step = _geometry(affine_ras)
    series_uid = generate_uid(entropy_srcs=[study["uid"], modality])
    ds, (tr, te, ti) = _base(modality, study, series_uid, number, frame_of_reference)
    n = volume.shape[2]
    orientation = [round(float(v), 8) for v in np.concatenate([row_cos, col_cos])]
    positions = [[round(float(v), 6) for v in origin + k * step] for k in range(n)]
    files = []
    if multiframe:
        uid = generate_uid(entropy_srcs=[series_uid, "frames"])
        ds.file_meta = _file_meta(ENHANCED_MR_IMAGE_STORAGE, uid)
        ds.SOPClassUID, ds.SOPInstanceUID, ds.InstanceNumber = ENHANCED_MR_IMAGE_STORAGE, uid, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.Rows, ds.Columns, ds.NumberOfFrames = volume.shape[1], volume.shape[0], n
        shared = Dataset()
        measures, plane, transform, timing = Dataset(), Dataset(), Dataset(), Dataset()
        measures.PixelSpacing, measures.SliceThickness = list(spacing), float(np.linalg.norm(step))
        plane.ImageOrientationPatient = orientation
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "US"
        timing.RepetitionTime = tr
        shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Sequence([measures]), Sequence([plane])
        shared.PixelValueTransformationSequence = Sequence([transform])
        shared.MRTimingAndRelatedParametersSequence = Sequence([timing])
        echo = Dataset()
        echo.EffectiveEchoTime = te
        shared.MREchoSequence = Sequence([echo])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        order = rng.permutation(n)  # frames stored out of order: only their positions place them
        per_frame = []
        for k in order:
            item, position = Dataset(), Dataset()
            position.ImagePositionPatient = positions[k]
            item.PlanePositionSequence = Sequence([position])
            per_frame.append(item)
        ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
        ds.PixelData = np.ascontiguousarray(stored[:, :, order].transpose(2, 1, 0)).tobytes()
        path = folder / f"{rng.integers(1 << 30):010d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    else:
        ds.ImageOrientationPatient = orientation
        ds.PixelSpacing, ds.SliceThickness = list(spacing), float(np.linalg.norm(step))
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.RepetitionTime, ds.EchoTime = tr, te
        if ti is not None:
            ds.InversionTime = ti
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        numbers = rng.permutation(n) + 1  # InstanceNumber says nothing about the order either
        for k in range(n):
            uid = generate_uid(entropy_srcs=[series_uid, str(k)])
            ds.file_meta = _file_meta(MR_IMAGE_STORAGE, uid)
            ds.SOPClassUID, ds.SOPInstanceUID, ds.InstanceNumber = MR_IMAGE_STORAGE, uid, int(numbers[k])
            ds.ImagePositionPatient = positions[k]
            ds.SliceLocation = round(float(np.dot(positions[k], np.cross(row_cos, col_cos))), 4)
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
            path = folder / f"IM{rng.integers(1 << 30):010d}"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return WrittenSeries(modality, series_uid, decoded, affine_ras.copy(), files)


def write_study(out, image: np.ndarray, affine_ras: np.ndarray, seed: int = 0, multiframe: bool = False,
                rotate_degrees=(0.0, 0.0, 0.0), tilt_degrees: float = 0.0, thick_flair: int = 1,
                separate_frames: bool = False, patient: str = "Phantom^Kerasbrain") -> dict[str, WrittenSeries]:
    """Write a four-modality study under `out` (one folder per series); returns what each series holds.

    `image` (X, Y, Z, 4) in MODALITIES order on `affine_ras`. `rotate_degrees` turns the whole
    study about its centre (an oblique acquisition); `tilt_degrees` shears the slice stack along
    the column direction (a gantry tilt); `thick_flair=N` keeps every N-th slice of FLAIR (thicker
    slices, its own grid); `separate_frames` gives each series its own FrameOfReferenceUID.
    """
    from pydicom.uid import generate_uid

    out = Path(out)
    rng = np.random.default_rng(seed)
    study = {"uid": generate_uid(entropy_srcs=[patient, str(seed)]), "patient": patient}
    centre = affine_ras[:3, :3] @ ((np.array(image.shape[:3]) - 1) / 2) + affine_ras[:3, 3]
    turn = rotation(rotate_degrees)
    affine = affine_ras.copy()
    affine[:3, :3] = turn @ affine_ras[:3, :3]
    affine[:3, 3] = turn @ (affine_ras[:3, 3] - centre) + centre
    if tilt_degrees:
        column = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
        affine[:3, 2] = affine[:3, 2] + np.tan(np.radians(tilt_degrees)) * np.linalg.norm(affine[:3, 2]) * column
    frame_of_reference = generate_uid(entropy_srcs=[study["uid"], "frame"])
    written = {}
    for m, modality in enumerate(MODALITIES):
        volume, grid = image[..., m], affine
        if modality == "FLAIR" and thick_flair > 1:
            volume = volume[:, :, ::thick_flair]
            grid = affine.copy()
            grid[:3, 2] = affine[:3, 2] * thick_flair
        own = generate_uid(entropy_srcs=[study["uid"], modality, "frame"]) if separate_frames else frame_of_reference
        written[modality] = write_series(out / f"series{m + 1}", modality, volume, grid, study, m + 1, own, rng,
                                         multiframe)
    return written


def write_dicom_dataset(out, cases: int = 2, shape=(96, 96, 64), seed: int = 0, difficulty: str = "easy",
                        progress=None, **study_options) -> Path:
    """Phantom cases as DICOM studies `out/studies/<case>/`, each with its true labels as a DICOM SEG
    drawn on the T1 post-contrast series (`truth/`), so `evaluate` scores a folder of studies; the
    labels (and, when every series shares one grid, the same decoded voxels) also as NIfTI:
    `out/labels/<case>.nii.gz`, `out/nifti/<case>.nii.gz`.

    The NIfTI twins let anyone check that a DICOM study predicts exactly as the same data in NIfTI.
    """
    import nibabel as nib

    from kerasbrain.data.dicom.seg import write_segmentation
    from kerasbrain.data.dicom.study import load_study
    from kerasbrain.data.labels import from_internal
    from kerasbrain.data.phantom import LPS_AFFINE, _to_file_order, make_phantom
    from kerasbrain.files import atomic_write

    out = Path(out)
    for i in range(cases):
        image, labels = make_phantom(shape, seed=seed * 100003 + i, difficulty=difficulty)
        image, labels = _to_file_order(image), _to_file_order(labels)
        cid = f"PHANTOM_{i + 1:03d}"
        written = write_study(out / "studies" / cid, image, LPS_AFFINE, seed=seed * 100003 + i,
                              patient=f"Phantom^{cid}", **study_options)
        reference = written["T1Gd"]
        write_segmentation(out / "studies" / cid / "truth" / "truth_seg.dcm", labels, load_study(out / "studies" / cid),
                           "phantom truth")
        label_image = nib.Nifti1Image(from_internal(labels, "msd").astype(np.uint8), reference.affine)
        atomic_write(out / "labels" / f"{cid}.nii.gz", lambda tmp: nib.save(label_image, tmp))
        if all(w.data.shape == reference.data.shape and np.allclose(w.affine, reference.affine)
               for w in written.values()):
            volume = np.stack([written[m].data for m in MODALITIES], axis=-1)
            twin = nib.Nifti1Image(volume, reference.affine)
            atomic_write(out / "nifti" / f"{cid}.nii.gz", lambda tmp: nib.save(twin, tmp))
        if progress:
            progress(i + 1, cid)
    return out
