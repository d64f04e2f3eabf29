"""`kerasbrain compare` on a scan and its simulated rescan: the same head, moved in the scanner.

    python bench/compare_rescan.py --model RUN --case CASE.nii.gz --out DIR [--degrees 8] [--shift 5] [--json F]

Writes DIR/rescan.nii.gz (the case's four modalities rotated about the vertical axis and shifted
in world space, resampled linearly onto the same grid: a second session with nothing grown), then
runs `kerasbrain compare --model RUN --before CASE --after rescan` with and without `--register`.
Nothing changed between the two scans, so every difference compare reports is what the model,
the resampling and the registration add: its test-retest noise.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(__file__))

from common import add_json_option, record  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--case", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--degrees", type=float, default=8.0)
    parser.add_argument("--shift", type=float, default=5.0, help="mm along x and y")
    add_json_option(parser)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    source = nib.load(args.case)
    data = np.asarray(source.dataobj, np.float32)
    angle = np.deg2rad(args.degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    zooms = np.asarray(source.header.get_zooms()[:3], float)
    centre = (np.array(data.shape[:3]) - 1) / 2
    offset = centre - rotation @ centre + np.array([args.shift, args.shift, 0]) / zooms
    moved = np.stack([ndimage.affine_transform(data[..., c], rotation, offset, order=1)
                      for c in range(data.shape[-1])], axis=-1)
    rescan = args.out / "rescan.nii.gz"
    nib.save(nib.Nifti1Image(moved, source.affine, source.header), rescan)
    lines = {}
    for register in (False, True):
        out = args.out / ("registered" if register else "world")
        command = ["kerasbrain", "compare", "--model", args.model, "--before", str(args.case), "--after", str(rescan),
                   "--out", str(out)] + (["--register"] if register else [])
        subprocess.run(command, check=True)
        result = json.loads((out / "comparison.json").read_text())
        lines[out.name] = result
        record(args.json, "compare_rescan", case=args.case.name, degrees=args.degrees, shift_mm=args.shift,
               register=register, counts=result["counts"], totals=result["totals"])
        t = result["totals"]
        print(f"{out.name}: lesions {result['counts']}; WT {t['WT_ml']['before']:.2f} -> {t['WT_ml']['after']:.2f} mL, "
              f"ET {t['ET_ml']['before']:.2f} -> {t['ET_ml']['after']:.2f} mL, RANO "
              f"{t['rano_product_mm2']['before']:.0f} -> {t['rano_product_mm2']['after']:.0f} mm^2")


if __name__ == "__main__":
    main()
