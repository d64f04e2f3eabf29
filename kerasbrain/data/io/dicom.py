"""DICOM studies in, DICOM Segmentations out (see `kerasbrain.data.dicom` for the reading and writing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.io import InputFormat, InputOption


class DicomFormat(InputFormat):
    name = "dicom"
    kind = "volume"
    description = "a DICOM study (a folder or a .zip holding the FLAIR, T1, T1 post-contrast and T2 series)"
    upload_suffixes = (".zip",)
    output_suffixes = (".dcm", ".nii.gz")  # a DICOM Segmentation, or NIfTI on the reference grid
    options = (
        InputOption("series", str, "DICOM input: which series is a modality, MODALITY=UID_OR_PATTERN (a "
                    "SeriesInstanceUID, a series number or a pattern like '*post*' on the description); "
                    "repeat per modality.", multiple=True, default=()),
        InputOption("reference", str, "DICOM input: the modality whose grid the others are resampled onto "
                    "and the SEG refers to (FLAIR, T1, T1Gd, T2).", default="T1Gd"),
        InputOption("register", bool, "DICOM input: register series with another frame of reference rigidly "
                    "(SimpleITK) instead of refusing them."),
        InputOption("nifti_beside", bool, "DICOM input with --out .dcm: also write the label map as NIfTI "
                    "(<out>.nii.gz) on the reference grid.", reading=False),
    )

    def recognises(self, inputs):
        from kerasbrain.data.dicom.study import is_dicom_study

        return len(inputs) == 1 and is_dicom_study(inputs[0])

    def list_cases(self, folder):
        """Each .zip and each sub-folder holding a DICOM study is a case; a folder that is one study is one case.

        A folder is one study when it holds DICOM files itself, or when all its sub-folders hold one
        StudyInstanceUID (a study exported a series per folder).
        """
        from kerasbrain.data.dicom.study import is_dicom_study, study_uid

        folder = Path(folder)
        if any(p.is_file() and p.suffix.lower() != ".zip" and is_dicom_study(p) for p in folder.iterdir()):
            return [(folder.name, (folder,))]
        children = [c for c in sorted(folder.iterdir()) if not c.name.startswith(".")]
        studies = [c for c in children if c.is_dir() and is_dicom_study(c)]
        if len(studies) > 1 and len({study_uid(c) for c in studies}) == 1:
            return [(folder.name, (folder,))]
        cases = [(c.name, (c,)) for c in studies]
        cases += [(c.name[:-4], (c,)) for c in children if c.is_file() and c.suffix.lower() == ".zip"]
        return sorted(cases)

    def load(self, inputs, options=None, progress=None):
        from kerasbrain.data.dicom.study import load_study
        from kerasbrain.data.layouts import Case
        from kerasbrain.data.nifti import Grid, to_canonical

        options = options or {}
        (path,) = inputs
        study = load_study(path, options.get("series") or (), options.get("reference") or "T1Gd",
                           bool(options.get("register")), progress)
        for line in study.lines + study.warnings:
            if progress:
                progress(line)
        grid = Grid(tuple(study.image.shape[:3]), study.affine.copy(), None, str(path))
        image = to_canonical(study.image, grid).astype(np.float32)
        labels = None if study.labels is None else np.ascontiguousarray(to_canonical(study.labels, grid))
        study.image = study.labels = None  # the canonical copies are the case's; the study keeps what writing needs
        return Case(study.name, np.ascontiguousarray(image), labels, grid, "msd", source=study)

    def write(self, case, labels, out, probabilities=None, layout=None, model="", run="", options=None):
        from kerasbrain.data.io.nifti import write_prediction
        from kerasbrain.data.nifti import from_canonical

        out = Path(out)
        if out.name.lower().endswith(".nii.gz"):
            return write_prediction(case, labels, out, probabilities, layout)
        if case.source is None:
            raise DataError(f"{out}: a DICOM Segmentation needs a DICOM input")
        from kerasbrain.data.dicom.seg import write_segmentation

        probs = from_canonical(probabilities, case.grid) if probabilities is not None else None
        written = write_segmentation(out, from_canonical(labels, case.grid), case.source, model, run, probs)
        if (options or {}).get("nifti_beside"):
            written += write_prediction(case, labels, out.with_name(self.stem(out) + ".nii.gz"), None, layout)
        return written

    def write_maps(self, case, maps, out, model: str = ""):
        """Beside a SEG, each map as a DICOM Parametric Map on the source series (`<stem>_<name>.dcm`);
        beside NIfTI, NIfTI files."""
        from kerasbrain.data.dicom.parametric_map import write_parametric_map
        from kerasbrain.data.nifti import from_canonical

        out = Path(out)
        if out.name.lower().endswith(".nii.gz") or case.source is None:
            return super().write_maps(case, maps, out, model)
        return [write_parametric_map(out.with_name(f"{self.stem(out)}_{name}.dcm"), from_canonical(value, case.grid),
                                     case.source, name, model or "kerasbrain") for name, value in maps.items()]


FORMAT = DicomFormat()
