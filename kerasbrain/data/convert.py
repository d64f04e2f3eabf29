"""Any volumetric dataset kerasbrain reads, written as an MSD Task01 folder: the layout training reads.

Hospitals hand over DICOM studies whose labels are DICOM SEG objects; `predict` and `evaluate` read
those directly, but training, `data plan` and cross-validation cut patches from a cached dataset
that `layouts.discover` lists. nnU-Net asks for the same step (a conversion into its raw layout).
Each case is loaded by its input format exactly as `evaluate` loads it (four modalities on one grid,
RAS+, labels from its SEG) and written as `imagesTr/<case>.nii.gz` (x, y, z, 4: FLAIR, T1w, T1Gd,
T2w) with `labelsTr/<case>.nii.gz` in MSD's numbering, or under `imagesTs/` when it has no labels;
each file keeps the case's world geometry (its RAS+ affine), so predictions on the converted cases
overlay the original scans.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError

MSD_MODALITIES = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
MSD_LABELS = {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}


def case_file_name(name: str, taken: set[str]) -> str:
    """A file-system-safe, unique case name (a study folder may be called `MR 2024/03 (Head)`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "case"
    unique, n = safe, 2
    while unique.lower() in taken:
        unique, n = f"{safe}_{n}", n + 1
    taken.add(unique.lower())
    return unique


def convert_to_msd(src, out, progress=print, options: dict | None = None) -> dict:
    """Write every case of `src` (any registered volume format, read with the input-format flags in
    `options`) into `out` in the MSD Task01 layout.

    Raises DataError naming the first case that cannot be read (callers write into a staged folder,
    so a failed conversion leaves nothing). Returns the written dataset.json.
    """
    from kerasbrain.data.io import labelled_cases
    from kerasbrain.data.labels import from_internal
    from kerasbrain.data.nifti import Grid, save_nifti

    out = Path(out)
    cases = labelled_cases(src, "volume", options)
    taken, training, testing, sources = set(), [], [], {}
    for i, (name, load, fmt) in enumerate(cases, 1):
        try:
            case = load()
        except (DataError, ValueError, OSError) as exc:
            raise DataError(f"{name}: {str(exc).splitlines()[0]}") from exc
        if case.image.ndim != 4 or case.image.shape[-1] != 4:
            raise DataError(f"{name}: {case.image.shape[-1] if case.image.ndim == 4 else 1} modalities; "
                            "MSD Task01 has 4 (FLAIR, T1w, T1Gd, T2w)")
        stem = case_file_name(name, taken)
        grid = Grid(case.image.shape[:3], case.grid.canonical_affine, None, name)  # RAS+, the case's world
        if case.labels is None:
            save_nifti(out / "imagesTs" / f"{stem}.nii.gz", case.image, grid, np.float32)
            testing.append(f"./imagesTs/{stem}.nii.gz")
        else:
            save_nifti(out / "imagesTr" / f"{stem}.nii.gz", case.image, grid, np.float32)
            save_nifti(out / "labelsTr" / f"{stem}.nii.gz", from_internal(case.labels, "msd"), grid, np.uint8)
            training.append({"image": f"./imagesTr/{stem}.nii.gz", "label": f"./labelsTr/{stem}.nii.gz"})
        sources[stem] = {"case": name, "format": fmt.name}
        if progress:
            progress(f"[{i}/{len(cases)}] {name} -> {stem} ({'labelled' if case.labels is not None else 'no labels'}, "
                     f"{fmt.name})")
    manifest = {
        "name": out.name, "description": f"converted by `kerasbrain data convert` from {src}",
        "tensorImageSize": "4D", "modality": MSD_MODALITIES, "labels": MSD_LABELS,
        "numTraining": len(training), "numTest": len(testing), "training": training, "test": testing,
        "kerasbrain_sources": sources,
    }
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return manifest
