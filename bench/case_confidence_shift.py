"""Does a case's confidence fall when a scan goes wrong? A kept race's held-out cases under shifts.

    python bench/case_confidence_shift.py --run KEPT_RACE_DIR [--run ...] --out DIR [--json FILE]

Failures on a test set are few and chosen by chance; the failures a deployed model meets often come
from scans unlike its training ones. Each held-out case of each kept race (`bench/race3d_folds.py
--arms single --out DIR`: `single/` the run, `data/heldout` its cases) is written again under five
shifts, one at a time, labels untouched, and every version is scored as a user scores it
(`kerasbrain evaluate --uncertainty`):

- noise: Gaussian noise of half each sequence's in-head standard deviation, inside the head;
- t1gd_missing: the post-contrast T1 replaced by the pre-contrast T1 (a study without contrast,
  imputed as centres often do): enhancing tumour cannot be seen;
- bias: a strong smooth multiplicative field over the head (exp of +-0.6 over a quadratic);
- thick_slices: each sequence blurred along the slice axis (Gaussian, sigma 2.5 voxels);
- flair_contrast: FLAIR's contrast bent by a gamma of 2 (another protocol's FLAIR).

For every version: the mean Dice and the mean expected Dice per region (does the estimate fall with
the Dice?), and the pooled failure detection of `evaluation/failure_detection.py` over the clean and
shifted rows together. Writes DIR/shift_cases.csv and DIR/shift.json; the shifted datasets and
their evaluations stay under DIR/<run>/ (reused when there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from case_confidence import evaluate_run, judge  # noqa: E402
from common import print_result  # noqa: E402

from kerasbrain.data.labels import REGIONS  # noqa: E402

SHIFTS = ("clean", "noise", "t1gd_missing", "bias", "thick_slices", "flair_contrast")
FLAIR, T1, T1GD = 0, 1, 2  # MSD Task01's channel order: FLAIR, T1w, t1gd, T2w


def shifted(image: np.ndarray, shift: str, seed: int) -> np.ndarray:
    """`image` (X, Y, Z, C) under one shift; the head (any channel non-zero) keeps its outline."""
    rng = np.random.default_rng(seed)
    out = image.astype(np.float32).copy()
    head = np.any(image != 0, axis=-1)
    if shift == "noise":
        for c in range(out.shape[-1]):
            std = float(out[..., c][head].std())
            out[..., c][head] += rng.normal(0.0, 0.5 * std, int(head.sum())).astype(np.float32)
    elif shift == "t1gd_missing":
        out[..., T1GD] = out[..., T1]
    elif shift == "bias":
        axes = [np.linspace(-1, 1, n) for n in out.shape[:3]]
        x, y, z = np.meshgrid(*axes, indexing="ij")
        c = rng.uniform(-1, 1, 6)
        field = c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * x * y
        field = np.exp(0.6 * field / max(np.abs(field[head]).max(), 1e-6))
        out *= field[..., None].astype(np.float32)
    elif shift == "thick_slices":
        out = ndimage.gaussian_filter1d(out, 2.5, axis=2)
    elif shift == "flair_contrast":
        top = float(np.percentile(out[..., FLAIR][head], 99.5)) or 1.0
        out[..., FLAIR] = top * np.clip(out[..., FLAIR] / top, 0, None) ** 2.0
    elif shift != "clean":
        raise ValueError(f"unknown shift {shift!r}")
    out[~head] = 0.0
    if shift != "clean":  # no new zeros inside the head, so the head mask stays the same
        inside = out[head]
        inside[inside == 0] = 1e-3
        out[head] = inside
    return out


def write_shifted(heldout: Path, out: Path, shift: str) -> Path:
    """A copy of the held-out dataset with every image shifted (labels and dataset.json as they are)."""
    if (out / "dataset.json").exists():
        return out
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    shutil.copytree(heldout / "labelsTr", out / "labelsTr", dirs_exist_ok=True)
    for i, path in enumerate(sorted((heldout / "imagesTr").glob("*.nii.gz"))):
        image = nib.load(path)
        data = shifted(np.asarray(image.dataobj, np.float32), shift, seed=i)
        nib.save(nib.Nifti1Image(data, image.affine, image.header), out / "imagesTr" / path.name)
    shutil.copyfile(heldout / "dataset.json", out / "dataset.json")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for run in args.run:
        for shift in SHIFTS:
            print(f"{run.name}: {shift}", flush=True)
            heldout = run / "data" / "heldout"
            data = heldout if shift == "clean" else write_shifted(heldout, args.out / run.name / shift, shift)
            for row in evaluate_run(run, args.out / run.name / f"eval_{shift}", data)[0]:
                rows.append({**row, "shift": shift})
    keys = ["run", "shift", "case_id"] + [f"{k}_{r}" for k in ("dice", "expected_dice", "agreement") for r in REGIONS]
    with (args.out / "shift_cases.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    value = lambda x, k: float(x[k])  # noqa: E731
    by_shift = {shift: {f"{k}_{r}": round(float(np.mean([value(x, f"{k}_{r}") for x in rows if x["shift"] == shift])), 4)
                        for k in ("dice", "expected_dice", "agreement") for r in REGIONS} for shift in SHIFTS}
    pooled = judge(rows)["dice"]
    result = {"by_shift": by_shift, "pooled": pooled, "cases": len(rows)}
    (args.out / "shift.json").write_text(json.dumps(result, indent=1))
    print("| shift | Dice WT / TC / ET | expected Dice WT / TC / ET | agreement WT / TC / ET |")
    for shift, m in by_shift.items():
        print(f"| {shift} | " + " | ".join(" / ".join(f"{m[f'{k}_{r}']:.3f}" for r in REGIONS)
                                          for k in ("dice", "expected_dice", "agreement")) + " |")
    for score, regions in pooled.items():
        print(f"{score}: " + "; ".join(f"{r} AURC {d['aurc']:.3f} (random {d['aurc_random']:.3f}, oracle "
                                       f"{d['aurc_oracle']:.3f}), AUROC {d['auroc_failure']}, failures {d['failures']}"
                                       for r, d in regions.items()))
    if args.json:
        wt = pooled["expected_dice"]["WT"]
        print_result({"bench": "case_confidence_shift", "date": time.strftime("%Y-%m-%d"),
                      "runs": [str(r) for r in args.run], **result},
                     f"{len(rows)} case versions: expected Dice's WT AURC {wt['aurc']:.3f} against random "
                     f"{wt['aurc_random']:.3f}, oracle {wt['aurc_oracle']:.3f}", args.json)


if __name__ == "__main__":
    main()
