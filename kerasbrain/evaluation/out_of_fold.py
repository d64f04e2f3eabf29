"""Out-of-fold predictions: each fold's model predicts the cases it never trained on, kept for cross-validation.

What nnU-Net keeps as `validation/*.npz` so that configurations and their ensembles can be scored
and post-processing decided on every training case without a separate test set. Probabilities are
stored before any post-processing, as float16 in a compressed `.npz` per case (`oof/<case>.npz`,
key `probabilities`, shape (X, Y, Z, regions) in the case's canonical grid), written atomically;
a case already written is not predicted again, so an interrupted fold resumes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

OOF_DIR = "oof"


def oof_path(run_dir, case_id: str) -> Path:
    return Path(run_dir) / OOF_DIR / f"{case_id}.npz"


def write_out_of_fold(run_dir, case_files: list, session, progress=print) -> list[Path]:
    """Predict `case_files` (the fold's validation cases) with `session` (a family's `VolumeSession`) and save
    each case's probabilities; returns the files."""
    from kerasbrain.data.layouts import load_case
    from kerasbrain.inference.predict_volume import predict_case

    written = []
    for i, files in enumerate(case_files, 1):
        path = oof_path(run_dir, files.case_id)
        if not path.exists():
            case = load_case(files, with_labels=False)
            _, probabilities = predict_case(case, session.predict, session.channels, session.config, session.spacing)
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_name(path.stem + ".tmp.npz")
            np.savez_compressed(staging, probabilities=probabilities.astype(np.float16))
            os.replace(staging, path)
        written.append(path)
        progress(f"out-of-fold {i}/{len(case_files)} {files.case_id}")
    return written


def read_out_of_fold(path) -> np.ndarray:
    """A case's out-of-fold probabilities as float32."""
    with np.load(path) as data:
        return data["probabilities"].astype(np.float32)
