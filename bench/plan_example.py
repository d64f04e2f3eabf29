"""`kerasbrain data plan` on a clinical-looking dataset: phantom heads whose headers say what routine
hospital MRI often is (0.43-0.94 mm in plane, 3-6 mm slices, a few thin-slice 3-D scans), so the
thick-slice rule and the per-axis poolings show.

    python bench/plan_example.py --out bench/results_cpu_2026-12-06/plan_example [--memory-gb 8]

Writes the phantoms to a temporary folder with those voxel sizes in their headers (the voxels of
192 x 192 x 28 phantoms), runs the command and keeps its plan.toml, plan.json and plan.png in --out;
the same with 2-D protocols only (no 3-D scans) in --out/2d_only. Then plans, in-process, a
fingerprint of 1,251 BraTS-sized heads (1 mm voxels, heads drawn around 140 x 172 x 137 voxels,
about what BraTS brains crop to) at 8, 24 and 80 GB, kept as --out/brats_sized.jsonl.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kerasbrain.data.phantom import write_dataset


def clinical_spacings(n: int, seed: int = 0, three_d: bool = True) -> list[tuple[float, float, float]]:
    """Mostly 2-D protocols (thick slices), one in six a 3-D sequence (near-isotropic) unless not `three_d`."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if three_d and i % 6 == 5:
            out.append((1.0, 1.0, float(rng.choice([1.0, 1.2]))))
        else:
            inplane = float(rng.choice([0.43, 0.47, 0.5, 0.9, 0.94]))
            out.append((inplane, inplane, float(rng.choice([3.0, 4.0, 5.0, 5.0, 6.0]))))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--memory-gb", default="8")
    args = parser.parse_args()
    for three_d, out in ((True, Path(args.out)), (False, Path(args.out) / "2d_only")):
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "Task01_BrainTumour"
            write_dataset(data, "msd", args.cases, (192, 192, 28), spacings=clinical_spacings(args.cases, 0, three_d))
            plan = Path(tmp) / "plan" / "plan.toml"
            subprocess.run([sys.executable, "-m", "cli.main", "data", "plan", str(data), "--out", str(plan),
                            "--memory-gb", args.memory_gb], check=True)
            out.mkdir(parents=True, exist_ok=True)
            for suffix in (".toml", ".json", ".png"):
                shutil.copy(plan.with_suffix(suffix), out / f"plan{suffix}")
    brats_sized(Path(args.out) / "brats_sized.jsonl")
    print(f"kept in {args.out}", file=sys.stderr)


def brats_sized(path: Path) -> None:
    import json

    from kerasbrain.data.fingerprint import CaseFingerprint, DatasetFingerprint
    from kerasbrain.training.config import ModelConfig
    from kerasbrain.training.planning import plan_training

    rng = np.random.default_rng(0)
    heads = [tuple(int(v) for v in rng.normal((140, 172, 137), (8, 9, 8))) for _ in range(1251)]
    fingerprint = DatasetFingerprint("simulated", "brats2021", tuple(
        CaseFingerprint(f"case{i}", (1.0, 1.0, 1.0), (240, 240, 155), head, 4) for i, head in enumerate(heads)))
    with open(path, "w") as f:
        for memory in (8, 24, 80):
            plan = plan_training(fingerprint, ModelConfig(), memory)
            f.write(json.dumps({"memory_gb": memory, **plan.to_dict()}) + "\n")
            print(f"{memory} GB: patch {plan.patch_size}, depth {plan.depth}, batch {plan.batch_size}, "
                  f"~{plan.estimated_gb} GB")


if __name__ == "__main__":
    main()
