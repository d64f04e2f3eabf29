"""How long DICOM in and DICOM SEG out take for a BraTS-size study (240 x 240 x 155, four series).

    python bench/dicom_io.py [--shape 240 240 155] [--repeats 3] [--multiframe] [--json FILE]

Writes a phantom study with `synth.write_study` (single-frame: 4 x 155 files), then times, each
`--repeats` times: reading it (`load_study`: headers, modality rules, pixels, rescale, geometry),
reading it from a zip, the same with a thick-slice FLAIR resampled onto the reference grid, and
writing the label map as a DICOM SEG (highdicom) plus the fractional SEG of the three region
probabilities. Prints the median of each in seconds and appends one JSON line to `--json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _machine() -> str:
    import os

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    return f"{os.cpu_count()}-core {model}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", nargs=3, type=int, default=(240, 240, 155))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--multiframe", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from kerasbrain.data.dicom.seg import write_segmentation
    from kerasbrain.data.dicom.study import load_study
    from kerasbrain.data.dicom.synth import write_study
    from kerasbrain.data.phantom import LPS_AFFINE, _to_file_order, make_phantom

    image, labels = make_phantom(tuple(args.shape), seed=1)
    image, labels = _to_file_order(image), _to_file_order(labels)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        write_study(tmp / "study", image, LPS_AFFINE, multiframe=args.multiframe)
        written_s = time.perf_counter() - start
        write_study(tmp / "thick", image, LPS_AFFINE, multiframe=args.multiframe, thick_flair=2)
        archive = shutil.make_archive(str(tmp / "study"), "zip", tmp / "study")
        study = load_study(tmp / "study")
        probabilities = np.random.default_rng(0).random(labels.shape + (3,), dtype=np.float32)
        result = {
            "bench": "dicom_io", "shape": list(args.shape), "multiframe": args.multiframe,
            "files": sum(1 for _ in (tmp / "study").rglob("*") if _.is_file()),
            "study_mb": round(sum(p.stat().st_size for p in (tmp / "study").rglob("*") if p.is_file()) / 1e6, 1),
            "write_study_s": round(written_s, 2),
            "read_s": round(_median_seconds(lambda: load_study(tmp / "study"), args.repeats), 2),
            "read_zip_s": round(_median_seconds(lambda: load_study(archive), args.repeats), 2),
            "read_thick_flair_resampled_s": round(_median_seconds(lambda: load_study(tmp / "thick"), args.repeats), 2),
            "write_seg_s": round(_median_seconds(
                lambda: write_segmentation(tmp / "out" / "seg.dcm", labels, study, "bench"), args.repeats), 2),
            "write_seg_and_fractional_s": round(_median_seconds(
                lambda: write_segmentation(tmp / "out" / "seg.dcm", labels, study, "bench",
                                           probabilities=probabilities),
                args.repeats), 2),
            "repeats": args.repeats, "machine": _machine(),
        }
    print(json.dumps(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
