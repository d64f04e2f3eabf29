"""A 3-D U-Net trained for a fixed number of wall-clock minutes, scored on held-out phantom cases.

    python bench/race3d.py [--minutes 25] [--config bench/race3d_baseline.toml] [--difficulty hard]
                           [--cases 16] [--test-cases 6] [--shape 120 120 78] [--out DIR] [--json FILE]

Writes MSD-layout phantoms (`kerasbrain synth msd --difficulty ...`): `--cases` to train on and
`--test-cases` more, from another seed, held out; the default shape is a 240 x 240 x 155 BraTS
volume at 2 mm. Trains `kerasbrain train unet3d` with the config under `--minutes` of time budget
(`--time-budget`: the run ends cleanly and a cosine schedule follows the clock), then scores
`best.keras` on the held-out cases exactly as `kerasbrain evaluate` does and prints Dice and
HD95 (mm) per region, mean and range over cases. What it compares: recipes at equal wall-clock
budget on the same hardware (issue 14's ablation table).
"""

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402

from common import print_result  # noqa: E402

from kerasbrain.data.labels import REGIONS  # noqa: E402
from kerasbrain.data.phantom import write_dataset  # noqa: E402
from kerasbrain.families import InferenceOverrides, get_family  # noqa: E402

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--config", default=str(HERE / "race3d_baseline.toml"),
                        help="A TOML file or a shipped config's name.")
    parser.add_argument("--difficulty", default="hard", choices=["easy", "hard"])
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--test-cases", type=int, default=6)
    parser.add_argument("--shape", type=int, nargs=3, default=(120, 120, 78))
    parser.add_argument("--seed", type=int, default=1, help="Training cases' seed; held-out cases use seed + 1.")
    parser.add_argument("--tune-postprocessing", action="store_true",
                        help="Choose [inference] min_enhancing_ml on the run's validation cases first.")
    parser.add_argument("--out", help="Keep the data, run and scores here (default: a temporary folder).")
    parser.add_argument("--json", help="Append the result as one JSON line to this file.")
    args = parser.parse_args()

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="race3d_"))
    shape = tuple(args.shape)
    train_dir, test_dir = root / "data" / "train", root / "data" / "heldout"
    if not (train_dir / "dataset.json").exists():
        write_dataset(train_dir, "msd", args.cases, shape, args.seed, difficulty=args.difficulty)
        write_dataset(test_dir, "msd", args.test_cases, shape, args.seed + 1, difficulty=args.difficulty)
    family = get_family("unet3d")
    config = family.load_config(args.config)
    start = time.monotonic()
    result = family.train(train_dir, root / "run", config, time_budget=args.minutes, epochs=1000,
                          progress=print)
    minutes = (time.monotonic() - start) / 60
    epochs = len(result["history"].get("loss", []))  # the last one may have been cut short by the budget
    overrides = InferenceOverrides()
    if args.tune_postprocessing and result["split"]["validation"]:  # chosen on validation cases, not the held-out
        family.evaluate(result["best"], train_dir, root / "eval_validation", result["split"]["validation"],
                        progress=print)
        tuned = json.loads((root / "eval_validation" / "summary.json").read_text())["postprocessing"]
        overrides = InferenceOverrides(min_enhancing_ml=tuned["best_min_enhancing_ml"])
        print(f"post-processing chosen on {len(result['split']['validation'])} validation cases: "
              f"min_enhancing_ml = {overrides.min_enhancing_ml:g}")
    family.evaluate(result["best"], test_dir, root / "eval", overrides=overrides, progress=print)
    summary = json.loads((root / "eval" / "summary.json").read_text())
    rows = list(csv.DictReader(open(root / "eval" / "cases.csv")))
    line = {"backend": keras.backend.backend(), "config": Path(args.config).name, "difficulty": args.difficulty,
            "minutes": round(minutes, 2), "epochs": epochs, "steps_per_epoch": config.training.steps_per_epoch,
            "cases": args.cases, "test_cases": args.test_cases, "shape": list(shape),
            "min_enhancing_ml": overrides.min_enhancing_ml or 0.0}
    for region in REGIONS:
        per_case = [float(row[f"dice_{region}"]) for row in rows]
        line[f"dice_{region}"] = round(summary[f"dice_{region}"]["mean"], 4)
        line[f"hd95_{region}"] = round(summary[f"hd95_{region}"]["mean"], 1)
        line[f"dice_{region}_range"] = [round(min(per_case), 2), round(max(per_case), 2)]
    print_result(line, f"held-out Dice WT/TC/ET {line['dice_WT']:.3f} / {line['dice_TC']:.3f} / {line['dice_ET']:.3f}, "
                       f"HD95 {line['hd95_WT']:.0f} / {line['hd95_TC']:.0f} / {line['hd95_ET']:.0f} mm after "
                       f"{minutes:.1f} min, {epochs} epochs of <= {config.training.steps_per_epoch} steps "
                       f"({Path(args.config).name}, {args.difficulty} phantoms)", args.json)

if __name__ == "__main__":
    main()
