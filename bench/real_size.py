"""BraTS 2021 at its real size on one machine: data check, preprocessing, one epoch, and how they grow (issue 28).

    python bench/real_size.py --cases 8 16 [--shape 240 240 155] [--base 2] [--out DIR] [--json FILE]

BraTS 2021 has 1,251 cases of 4 x 240 x 240 x 155. A phantom that size takes 10-70 s to make, so
`--base` are made and the rest are varied copies of them (a flip, an in-plane shift and a scale per
modality: other bytes, so `data check` does not take them for duplicates), written in the BraTS
2021 layout. For each number of cases: `data check`, the 3-D preprocessing cache (its size plan
said first) and one epoch of `cpu_budget_unet3d` training, each stage in its own process with its
wall time, peak memory and the disk it leaves; the last line says how many cases this disk could
cache, from the cache's own estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import add_json_option, machine, peak_rss_gb  # noqa: E402

MODALITIES = ("flair", "t1", "t1ce", "t2")


def disk_gb(folder: Path) -> float:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 1e9


def write_copies(base: Path, out: Path, cases: int, seed: int = 0) -> None:
    """Cases BraTS2021_00001.. in `out`: the `base` cases, then varied copies of them, up to `cases`."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    originals = sorted(p for p in base.iterdir() if p.is_dir())
    for i in range(cases):
        cid = f"BraTS2021_{i + 1:05d}"
        if (out / cid).is_dir():
            continue
        source = originals[i % len(originals)]
        flip, shift = rng.uniform() < 0.5, rng.integers(-10, 11, 2)
        tmp = out / (cid + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)

        def vary(array):
            array = np.flip(array, 0) if flip else array
            return np.roll(array, tuple(shift), axis=(0, 1))

        for name in MODALITIES + ("seg",):
            image = nib.load(str(source / f"{source.name}_{name}.nii.gz"))
            data = np.asarray(image.dataobj)
            if i >= len(originals):
                data = vary(data)
                if name != "seg":
                    data = (data * rng.uniform(0.9, 1.1)).astype(data.dtype)
            nib.save(nib.Nifti1Image(data, image.affine, image.header), str(tmp / f"{cid}_{name}.nii.gz"))
        tmp.rename(out / cid)


# ---- one stage in its own process -----------------------------------------------------------------


def run_stage(stage: str, data: Path, run: Path, steps: int) -> dict:
    from kerasbrain.families import get_family

    config = get_family("unet3d").load_config("cpu_budget_unet3d", ())
    facts = {}
    if stage == "check":
        from kerasbrain.data.check import check_dataset

        report = check_dataset(data, progress=lambda m: None)
        facts = {"problems": len(report.problems), "cases_checked": report.counts.get("cases")}
    elif stage == "preprocess":
        from kerasbrain.training.train_unet3d import prepare_cases

        messages = []
        prepare_cases(data, run, config, progress=messages.append)
        facts = {"plan": next((m for m in messages if m.startswith("cache:")), "")}
    elif stage == "train":
        from kerasbrain.training.train_unet3d import train_unet3d

        train_unet3d(data, run, config, epochs=1, steps_per_epoch=steps, verbose=0, progress=lambda m: None)
    return {**facts, "peak_rss_gb": round(peak_rss_gb(), 2)}


def stage_in_process(stage: str, data: Path, run: Path, steps: int) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--stage", stage, "--data", str(data), "--run", str(run),
                          "--steps", str(steps)], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"stage": stage, "seconds": round(time.perf_counter() - start, 1), **result}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--shape", type=int, nargs=3, default=[240, 240, 155])
    parser.add_argument("--base", type=int, default=2, help="Phantoms made; the rest are varied copies.")
    parser.add_argument("--steps", type=int, default=50, help="Steps of the one epoch (cpu_budget_unet3d's).")
    parser.add_argument("--out", default="/tmp/kerasbrain_real_size")
    parser.add_argument("--stage", choices=["check", "preprocess", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    add_json_option(parser)
    args = parser.parse_args()
    if args.stage:  # the child process of one stage
        print(json.dumps(run_stage(args.stage, Path(args.data), Path(args.run), args.steps)))
        return
    from kerasbrain.data.phantom import write_dataset

    out = Path(args.out)
    base = out / "base"
    start = time.perf_counter()
    if not base.is_dir():
        write_dataset(base.with_suffix(".tmp"), "brats2021", cases=args.base, shape=tuple(args.shape), seed=5,
                      difficulty="hard")
        base.with_suffix(".tmp").rename(base)
    print(f"{args.base} phantoms of {tuple(args.shape)} in {time.perf_counter() - start:.0f} s", flush=True)
    per_case_cache = None
    for n in sorted(args.cases):
        data, run = out / f"data_{n}", out / f"run_{n}"
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        write_copies(base, data, n)
        rows = [{"stage": "write copies", "seconds": round(time.perf_counter() - start, 1)}]
        for stage in ("check", "preprocess", "train"):
            rows.append(stage_in_process(stage, data, run, args.steps))
        rows[0]["disk_gb"] = round(disk_gb(data), 2)
        rows[2]["disk_gb"] = round(disk_gb(run / "cache"), 2)
        per_case_cache = rows[2]["disk_gb"] / n
        for row in rows:
            line = {"bench": "real_size", "cases": n, "shape": args.shape, **row, **machine()}
            print(json.dumps(line), flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(line) + "\n")
    if per_case_cache:
        free = shutil.disk_usage(out).free / 1e9
        print(f"cache {per_case_cache:.3f} GB per case: 1,251 cases need {1251 * per_case_cache:.0f} GB; "
              f"{free:.0f} GB free here holds {int(free / per_case_cache)} cases")


if __name__ == "__main__":
    main()
