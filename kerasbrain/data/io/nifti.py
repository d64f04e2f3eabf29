"""NIfTI volumes: one 4-D file, four 3-D files (FLAIR, T1, T1Gd, T2), a BraTS case folder, MSD/BraTS datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.io import InputFormat

SUFFIXES = (".nii.gz", ".nii")


class NiftiFormat(InputFormat):
    name = "nifti"
    kind = "volume"
    description = "NIfTI volumes (one 4-D .nii.gz, the four modalities, or a BraTS case folder)"
    upload_suffixes = SUFFIXES
    output_suffixes = (".nii.gz",)

    def recognises(self, inputs):
        if inputs and all(p.name.lower().endswith(SUFFIXES) for p in inputs):
            return True
        if len(inputs) == 1 and inputs[0].is_dir():
            from kerasbrain.data.layouts import case_from_files

            try:
                case_from_files(inputs)
                return True
            except DataError:
                return False
        return False

    def check_upload(self, paths):
        from kerasbrain.data.layouts import order_modalities

        if len(paths) == 1:
            return tuple(paths)
        if len(paths) != 4:
            raise DataError(f"a case is one 4-D NIfTI or the four BraTS modalities; {len(paths)} files were uploaded")
        return order_modalities(paths)

    def list_cases(self, folder):
        """An MSD or BraTS dataset's cases, a BraTS case folder itself, or every NIfTI file in `folder`."""
        from kerasbrain.data.layouts import NII, case_from_files, discover

        try:
            case = case_from_files([folder])  # a BraTS case folder itself
            return [(case.case_id, (Path(folder),))]
        except DataError:
            pass
        try:
            dataset = discover(folder)
        except DataError:
            files = sorted(p for p in Path(folder).iterdir()
                           if p.is_file() and p.name.lower().endswith(SUFFIXES) and not p.name.startswith("."))
            return [(p.name[: -len(NII)] if p.name.endswith(NII) else p.stem, (p,)) for p in files]
        cases = dataset.cases + dataset.test_cases
        if dataset.layout.startswith("brats"):
            return [(c.case_id, (c.images[0].parent,)) for c in cases]
        return [(c.case_id, c.images) for c in cases]

    def labelled_cases(self, folder, options=None):
        """An MSD or BraTS dataset's labelled cases (a broken dataset.json is an error, not "none")."""
        from functools import partial

        from kerasbrain.data.layouts import discover, load_case

        try:
            dataset = discover(folder)
        except DataError:
            if (Path(folder) / "dataset.json").is_file():
                raise
            return []
        return [(c.case_id, partial(load_case, c)) for c in dataset.labelled()]

    def load(self, inputs, options=None, progress=None):
        from kerasbrain.data.layouts import case_from_files, load_case

        return load_case(case_from_files(list(inputs)), with_labels=True)

    def write(self, case, labels, out, probabilities=None, layout=None, model="", run="", options=None):
        return write_prediction(case, labels, out, probabilities, layout)


def write_prediction(case, labels: np.ndarray, out: str | Path, probs: np.ndarray | None = None,
                     layout: str | None = None) -> list[Path]:
    """Write the label map (in `layout`'s numbering, default the case's) in the input's voxel grid.

    `case` is a loaded `layouts.Case` (any format with a world grid); `probs` (WT/TC/ET) go beside as
    `<stem>_probabilities.nii.gz`.
    """
    from kerasbrain.data.labels import from_internal
    from kerasbrain.data.nifti import from_canonical, save_nifti

    layout = layout or case.layout
    written = [save_nifti(out, from_canonical(from_internal(labels, layout), case.grid), case.grid, np.uint8)]
    if probs is not None:
        out = Path(out)
        stem = out.name[:-7] if out.name.endswith(".nii.gz") else out.stem
        prob_path = out.with_name(f"{stem}_probabilities.nii.gz")
        written.append(save_nifti(prob_path, from_canonical(probs, case.grid), case.grid, np.float32))
    return written


FORMAT = NiftiFormat()
