"""Peak training memory of the default 3-D U-Net at several patches and batches, and the fit
`kerasbrain data plan` estimates memory with (`kerasbrain/training/planning.py`).

    python bench/plan_memory.py [--points 64:1,64:2,96:1,96:2,128:1,128:2] [--architecture unet|resenc] [--json FILE]

Each point is `bench/train_step.py` in a process of its own (peak resident memory is per process),
2 timed steps after a warm-up. The fit is peak = fixed + bytes x (batch x the values one patch keeps
for the backward pass, `planning.kept_values`), least squares over the points; each point is printed
beside what the fit and what the planner's constants say.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from common import add_json_option, record  # noqa: E402

from kerasbrain.training import planning  # noqa: E402
from kerasbrain.training.config import ModelConfig  # noqa: E402


def measure(patch: int, batch: int, architecture: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "step.jsonl")
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "train_step.py"), "--patch",
                        str(patch), "--batch", str(batch), "--steps", "2", "--architecture", architecture, "--json", out],
                       check=True)
        return json.loads(open(out).read().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", default="64:1,64:2,96:1,96:2,128:1,128:2")
    parser.add_argument("--architecture", choices=["unet", "resenc"], default="unet")
    add_json_option(parser)
    args = parser.parse_args()
    model = ModelConfig(architecture=args.architecture)
    rows = []
    for point in args.points.split(","):
        patch, batch = (int(v) for v in point.split(":"))
        line = measure(patch, batch, args.architecture)
        values = batch * planning.kept_values((patch,) * 3, model)
        rows.append({"patch": patch, "batch": batch, "kept_values": values, "peak_gb": line["peak_gb"],
                     "seconds_per_step": line["seconds_per_step"]})
        print(f"patch {patch}^3 batch {batch}: peak {line['peak_gb']:.2f} GB ({values / 1e6:.0f} M kept values)",
              flush=True)
    a = np.array([[1.0, r["kept_values"]] for r in rows])
    (fixed, per_value), *_ = np.linalg.lstsq(a, np.array([r["peak_gb"] for r in rows]), rcond=None)
    fixed_gb, bytes_per_value = planning.MEMORY_FIT[args.architecture]
    print(f"fit: peak = {fixed:.2f} GB + {per_value * 1e9:.1f} bytes x kept values "
          f"(planner: {fixed_gb} GB + {bytes_per_value} bytes)")
    for r in rows:
        estimate = planning.estimate_training_gb((r["patch"],) * 3, r["batch"], model)
        print(f"  {r['patch']}^3 x {r['batch']}: measured {r['peak_gb']:.2f} GB, fit "
              f"{fixed + per_value * r['kept_values']:.2f}, planner {estimate:.2f}")
        r["planner_gb"] = round(estimate, 3)
    record(args.json, "plan_memory", architecture=args.architecture, points=rows, fixed_gb=round(float(fixed), 3),
           bytes_per_value=round(float(per_value * 1e9), 2))


if __name__ == "__main__":
    main()
