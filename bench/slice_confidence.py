"""Does a 2-D model's own confidence find its worst slices and patients? Held-out LGG phantoms, risk-coverage.

    python bench/slice_confidence.py [--seeds 1 2] [--minutes 10] [--heldout 16] --out DIR [--json FILE] [--small]

Per seed, as a user would: `kerasbrain synth lgg --difficulty hard` writes 12 training patients
of 24 slices at 256 x 256 (seed S) and, from another seed (100 + S), `--heldout` patients the run
never sees; `kerasbrain train unet2d --time-budget MINUTES` trains the CPU recipe
(`cpu_budget_unet2d`), and `kerasbrain evaluate` scores the held-out patients, writing each slice's
and each patient's Dice and expected Dice (`metrics/case_confidence.expected_dice`). The rows of all
seeds are pooled and the expected Dice judged by `evaluation/failure_detection.py` (AURC against a
random ranking and the oracle, Spearman, AUROC of flagging Dice below 0.8) for three units:
patients, every slice, and the slices that hold tumour; and where the missed tumours lie: of the
slices with nothing predicted, how many next to a slice with a predicted tumour hold tumour, and
how many elsewhere. Kept runs and evaluations are reused.
Writes DIR/failure_detection.json and DIR/risk_coverage.png. `--small` (64 x 64 slices, a few
patients, 20 s of training) checks that the script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from case_confidence import save_risk_coverage  # noqa: E402
from common import machine, print_result  # noqa: E402

from kerasbrain.evaluation.failure_detection import failure_detection  # noqa: E402
from kerasbrain.inference.slice_review import next_to_predicted_tumour  # noqa: E402

UNITS = ("patients", "slices", "tumour slices")


def kerasbrain(*args) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], check=True)


def read_csv(path: Path, seed: int) -> list[dict]:
    with path.open() as f:
        return [{"seed": seed, **row} for row in csv.DictReader(f)]


def run_seed(seed: int, out: Path, args) -> dict[str, list[dict]]:
    """Write, train and evaluate one seed (each step skipped when its output is there); its rows per unit."""
    size = 64 if args.small else 256
    train, heldout = out / "train", out / "heldout"
    if not train.exists():
        kerasbrain("synth", "lgg", "--patients", 6 if args.small else 12, "--slices", 8 if args.small else 24,
                   "--image-size", size, "--difficulty", "hard", "--seed", seed, "--out", train)
    if not heldout.exists():
        kerasbrain("synth", "lgg", "--patients", args.heldout, "--slices", 8 if args.small else 24,
                   "--image-size", size, "--difficulty", "hard", "--seed", 100 + seed, "--out", heldout)
    if not (out / "run" / "best.keras").exists():
        kerasbrain("train", "unet2d", "--data", train, "--time-budget", args.minutes, "--out", out / "run")
    if not (out / "eval" / "patients.csv").exists():
        kerasbrain("evaluate", "--model", out / "run", "--data", heldout, "--out", out / "eval")
    slices = read_csv(out / "eval" / "slices.csv", seed)
    tumour = {(r["patient"], r["slice"]) for r in slices if r["recall"] not in ("", "nan")}  # truth not empty
    return {"patients": read_csv(out / "eval" / "patients.csv", seed), "slices": slices,
            "tumour slices": [r for r in slices if (r["patient"], r["slice"]) in tumour]}


def empty_slices_next_to_tumour(slices: list[dict]) -> dict:
    """Where the missed tumours are: the slices with nothing predicted, split by whether a neighbouring
    slice of the same patient (and run) has a predicted tumour, with how many of each hold tumour."""
    # one patient per run and patient: the held-out names repeat across seeds
    near = next_to_predicted_tumour({(f"{r['seed']}/{r['patient']}", int(r["slice"])): r["precision"] not in ("", "nan")
                                     for r in slices})
    counts = {"next_to_predicted": [0, 0], "elsewhere": [0, 0]}  # [slices, of which hold tumour]
    for r in slices:
        if r["precision"] in ("", "nan"):  # nothing predicted
            key = (f"{r['seed']}/{r['patient']}", int(r["slice"]))
            entry = counts["next_to_predicted" if key in near else "elsewhere"]
            entry[0] += 1
            entry[1] += r["recall"] not in ("", "nan")
    return {k: {"slices": n, "hold_tumour": t} for k, (n, t) in counts.items()}


def plot(pooled: dict[str, list[dict]], path: Path) -> None:
    """Risk-coverage curves per unit: the expected Dice, the oracle and random."""
    panels = []
    for unit in UNITS:
        dice = np.array([float(r["dice"]) for r in pooled[unit]])
        conf = np.array([float(r["expected_dice"]) for r in pooled[unit]])
        panels.append((dice, {"expected Dice": conf}, f"{len(dice)} held-out {unit}", unit.split()[-1]))
    save_risk_coverage(panels, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--heldout", type=int, default=16, help="held-out patients per seed")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--small", action="store_true", help="tiny slices and runs: checks the script only")
    args = parser.parse_args(argv)
    if args.small:
        args.minutes, args.heldout = min(args.minutes, 0.33), min(args.heldout, 3)
    pooled = {unit: [] for unit in UNITS}
    for i, seed in enumerate(args.seeds, 1):
        print(f"[{i}/{len(args.seeds)}] seed {seed}", flush=True)
        for unit, rows in run_seed(seed, args.out / f"seed{seed}", args).items():
            pooled[unit] += rows
    result = {unit: failure_detection([float(r["expected_dice"]) for r in rows], [float(r["dice"]) for r in rows])
              for unit, rows in pooled.items()}
    result["mean_dice"] = {unit: float(np.mean([float(r["dice"]) for r in rows])) for unit, rows in pooled.items()}
    result["empty_predictions"] = empty_slices_next_to_tumour(pooled["slices"])
    # the tumour slices split: those the model predicted something on, and the missed ones' estimates
    found = [r for r in pooled["tumour slices"] if r["precision"] not in ("", "nan")]
    missed = [float(r["expected_dice"]) for r in pooled["tumour slices"] if r["precision"] in ("", "nan")]
    result["tumour slices with a prediction"] = failure_detection([float(r["expected_dice"]) for r in found],
                                                                  [float(r["dice"]) for r in found])
    result["empty_predictions"]["missed_tumour"] = {"slices": len(missed), "median_expected_dice":
                                                    float(np.median(missed)) if missed else None}
    (args.out / "failure_detection.json").write_text(json.dumps(result, indent=1))
    plot(pooled, args.out / "risk_coverage.png")
    print("| unit | count | mean Dice | failures < 0.8 | AURC | random | oracle | Spearman | AUROC |")
    for unit in UNITS:
        d = result[unit]
        print(f"| {unit} | {d['cases']} | {result['mean_dice'][unit]:.3f} | {d['failures']} | {d['aurc']:.3f} "
              f"| {d['aurc_random']:.3f} | {d['aurc_oracle']:.3f} | {d['spearman']} | {d['auroc_failure']} |")
    near, far = result["empty_predictions"]["next_to_predicted"], result["empty_predictions"]["elsewhere"]
    print(f"slices with nothing predicted: {near['slices']} next to a predicted tumour, {near['hold_tumour']} of them "
          f"hold tumour; {far['slices']} elsewhere, {far['hold_tumour']} hold tumour")
    d, missed = result["tumour slices with a prediction"], result["empty_predictions"]["missed_tumour"]
    print(f"tumour slices with a prediction: {d['cases']}, AURC {d['aurc']:.3f} (random {d['aurc_random']:.3f}, "
          f"oracle {d['aurc_oracle']:.3f}); missed: {missed['slices']}, "
          f"median estimate {missed['median_expected_dice']}")
    if args.json:
        p = result["patients"]
        print_result({"bench": "slice_confidence", **machine(), "seeds": args.seeds, "minutes": args.minutes,
                      "heldout_patients": args.heldout, "small": args.small, "result": result},
                     f"{p['cases']} patients: expected Dice's AURC {p['aurc']:.3f} against random "
                     f"{p['aurc_random']:.3f} and the oracle's {p['aurc_oracle']:.3f}", args.json)


if __name__ == "__main__":
    main()
