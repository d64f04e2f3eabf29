"""Readers for the public multi-modal brain-tumour layouts: MSD Task01, BraTS 2021 and BraTS 2023.

`discover(root)` recognises the layout and lists its cases; `load_case(case)` reads, validates and
reorients one case into the internal convention: image (X, Y, Z, 4) float32 in modality order
FLAIR, T1, T1Gd, T2 and labels (X, Y, Z) uint8 in `kerasbrain.data.labels` numbering, both RAS+.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.labels import LabelError, to_internal
from kerasbrain.data.nifti import Grid, load_nifti, same_grid, to_canonical

MODALITIES = ("FLAIR", "T1", "T1Gd", "T2")
#: File suffix of each modality (in `MODALITIES` order) and of the label, per BraTS release.
BRATS_SUFFIXES = {
    "brats2021": (("_flair", "_t1", "_t1ce", "_t2"), "_seg"),
    "brats2023": (("-t2f", "-t1n", "-t1c", "-t2w"), "-seg"),
}
NII = ".nii.gz"


@dataclass(frozen=True)
class CaseFiles:
    """Where one case's files are. `images` is one 4-D file (MSD) or four 3-D files (BraTS)."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None
    layout: str


@dataclass(frozen=True)
class Dataset:
    layout: str
    root: Path
    cases: tuple[CaseFiles, ...]
    test_cases: tuple[CaseFiles, ...] = field(default=())

    def labelled(self) -> tuple[CaseFiles, ...]:
        return tuple(c for c in self.cases if c.label is not None)


@dataclass
class Case:
    """One loaded case in canonical orientation, with the grid needed to write results back."""

    case_id: str
    image: np.ndarray
    labels: np.ndarray | None
    grid: Grid
    layout: str
    source: object = None  # what the input format needs to write results back in its own terms (DICOM)


def discover(root: str | os.PathLike) -> Dataset:
    """Recognise the layout under `root` and list its cases; raise `DataError` if it is none of them."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    if (root / "dataset.json").is_file():
        return _discover_msd(root)
    for layout, (suffixes, seg) in BRATS_SUFFIXES.items():
        cases = _discover_brats(root, layout, suffixes, seg)
        if cases:
            return Dataset(layout, root, tuple(cases))
    raise DataError(
        f"{root}: no dataset found: expected MSD Task01 (dataset.json, imagesTr/, labelsTr/) or BraTS case "
        "folders (<case>/<case>_flair.nii.gz ... or <case>/<case>-t2f.nii.gz ...); DICOM studies or other "
        "formats: `kerasbrain data convert` writes them in the MSD layout"
    )


def _discover_msd(root: Path) -> Dataset:
    manifest = root / "dataset.json"
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{manifest}: not valid JSON ({exc})") from exc
    modality = meta.get("modality", {})
    names = [str(modality.get(str(i), "")).lower() for i in range(len(modality))]
    expected = ["flair", "t1w", "t1gd", "t2w"]
    if names and names != expected:
        raise DataError(f"{manifest}: modality order {names} is not MSD Task01's {expected}")

    def case(entry_image: str, entry_label: str | None) -> CaseFiles:
        image = (root / entry_image).resolve()
        label = (root / entry_label).resolve() if entry_label else None
        case_id = image.name[: -len(NII)] if image.name.endswith(NII) else image.stem
        return CaseFiles(case_id, (image,), label, "msd")

    training = meta.get("training")
    if not isinstance(training, list):
        raise DataError(f"{manifest}: missing the 'training' list")
    try:
        cases = tuple(case(t["image"], t["label"]) for t in training)
    except (KeyError, TypeError) as exc:
        raise DataError(f"{manifest}: each 'training' entry needs 'image' and 'label' ({exc})") from exc
    tests = tuple(case(t, None) for t in meta.get("test", []))
    return Dataset("msd", root, cases, tests)


def _discover_brats(root: Path, layout: str, suffixes, seg: str) -> list[CaseFiles]:
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        cid = folder.name
        images = tuple(folder / f"{cid}{s}{NII}" for s in suffixes)
        if not images[0].exists():
            continue
        missing = [p.name for p in images if not p.exists()]
        if missing:
            raise DataError(f"{folder}: case is missing {', '.join(missing)}")
        label = folder / f"{cid}{seg}{NII}"
        cases.append(CaseFiles(cid, images, label if label.exists() else None, layout))
    return cases


def case_from_files(paths: list[str | os.PathLike], layout: str = "msd") -> CaseFiles:
    """Build a `CaseFiles` from a single 4-D file or four 3-D files given on the command line."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        for name, (suffixes, seg) in BRATS_SUFFIXES.items():
            found = _discover_brats(folder.parent, name, suffixes, seg)
            match = [c for c in found if c.case_id == folder.name]
            if match:
                return match[0]
        raise DataError(f"{folder}: not a BraTS case folder")
    if len(paths) not in (1, 4):
        raise DataError(f"expected one 4-D NIfTI or four 3-D NIfTIs (FLAIR, T1, T1Gd, T2), got {len(paths)} files")
    name = paths[0].name
    case_id = name[: -len(NII)] if name.endswith(NII) else paths[0].stem
    return CaseFiles(case_id, tuple(paths), None, layout)


def order_modalities(paths) -> tuple[Path, ...]:
    """Four BraTS modality files, in any order, sorted into `MODALITIES` order by their suffixes.

    Files that arrive without an order (a browser upload) are recognised by the BraTS 2021
    (`_flair`, `_t1`, `_t1ce`, `_t2`) or BraTS 2023 (`-t2f`, `-t1n`, `-t1c`, `-t2w`) names.
    """
    paths = [Path(p) for p in paths]
    for suffixes, _ in BRATS_SUFFIXES.values():
        by_suffix = {}
        for path in paths:
            stem = path.name[: -len(NII)] if path.name.endswith(NII) else path.name.removesuffix(".nii")
            match = [s for s in suffixes if stem.lower().endswith(s)]
            if match:
                by_suffix.setdefault(match[0], []).append(path)
        if all(len(by_suffix.get(s, ())) == 1 for s in suffixes):
            return tuple(by_suffix[s][0] for s in suffixes)
    names = ", ".join(p.name for p in paths)
    raise DataError(f"{names}: cannot tell the four modalities apart; name them as BraTS does "
                    f"(_flair, _t1, _t1ce, _t2 or -t2f, -t1n, -t1c, -t2w)")


def load_case(case: CaseFiles, with_labels: bool = True) -> Case:
    """Read and validate one case; see the module docstring for the returned convention."""
    if len(case.images) == 1:
        data, grid = load_nifti(case.images[0], ndim=4)
        if data.shape[3] != 4:
            raise DataError(f"{case.images[0]}: expected 4 modalities in the last axis, found {data.shape[3]}")
        image = np.asarray(data, dtype=np.float32)
    else:
        volumes, grid = [], None
        for path in case.images:
            data, g = load_nifti(path, ndim=3)
            if grid is None:
                grid = g
            elif not same_grid(grid, g):
                raise DataError(
                    f"{path}: shape {g.shape} / affine differ from {case.images[0].name} "
                    f"(shape {grid.shape}); the modalities of one case must share a grid"
                )
            volumes.append(np.asarray(data, dtype=np.float32))
        image = np.stack(volumes, axis=-1)
    labels = None
    if with_labels and case.label is not None:
        raw, lgrid = load_nifti(case.label, ndim=3)
        if not same_grid(grid, lgrid):
            raise DataError(f"{case.label}: shape {lgrid.shape} / affine differ from the images (shape {grid.shape})")
        if np.issubdtype(raw.dtype, np.floating) and not np.array_equal(raw, np.round(raw)):
            raise DataError(f"{case.label}: label map holds non-integer values")
        try:
            labels = to_internal(np.asarray(raw), case.layout, source=str(case.label))
        except LabelError as exc:
            raise DataError(str(exc)) from exc
        labels = to_canonical(labels, grid).astype(np.uint8)
    image = to_canonical(image, grid).astype(np.float32)
    return Case(case.case_id, np.ascontiguousarray(image), None if labels is None else np.ascontiguousarray(labels), grid, case.layout)
