"""Does a case's confidence find its failures? Kept races' held-out cases, pooled, risk-coverage.

    python bench/case_confidence.py --runs KEPT_RACE_DIR [KEPT_RACE_DIR ...] --out DIR [--json FILE]

Each KEPT_RACE_DIR is what `bench/race3d_folds.py --arms single --out DIR` kept (`single/` the run,
`data/heldout` its held-out cases). Each run's held-out cases are scored as a user scores them,
`kerasbrain evaluate --model RUN/single --data RUN/data/heldout --uncertainty --out DIR/<run>` (kept
and reused when its cases.csv exists), so every case has its Dice, lesion-wise Dice and its two
confidences (`metrics/case_confidence.py`). The cases of all runs are pooled (one row per case and
model) and each confidence is judged per region against both Dice scores by
`evaluation/failure_detection.py`: AURC, against a random ranking and the oracle; Spearman; AUROC of
flagging cases below 0.8. Lesion by lesion, from the runs' lesions.csv: does a predicted lesion's
mean probability (the report's per-lesion confidence) set false positives below true lesions (AUROC
per region)? Writes DIR/pooled_cases.csv, DIR/pooled_lesions.csv, DIR/failure_detection.json and
DIR/risk_coverage.png (the pooled curves per region).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from common import print_result  # noqa: E402

from kerasbrain.evaluation.failure_detection import REGIONS, auroc, failure_detection, selective_risks  # noqa: E402

SCORES = ("expected_dice", "agreement")
TARGETS = {"dice": "Dice", "lesion_dice": "lesion-wise Dice"}


def evaluate_run(run: Path, out: Path, data: Path | None = None) -> tuple[list[dict], list[dict]]:
    """The cases' rows and lesion rows of one kept race on `data` (its held-out cases by default),
    evaluated once."""
    if not (out / "cases.csv").exists():
        command = [sys.executable, "-m", "cli.main", "evaluate", "--model", str(run / "single"), "--data",
                   str(data or run / "data" / "heldout"), "--uncertainty", "--out", str(out)]
        subprocess.run(command, check=True)
    tables = []
    for name in ("cases.csv", "lesions.csv"):
        with (out / name).open() as f:
            tables.append([{"run": run.name, **row} for row in csv.DictReader(f)])
    return tables[0], tables[1]


def judge_lesions(rows: list[dict]) -> dict:
    """Per region, over the predicted lesions (false positives and lesions with a match): how well their
    mean probability sets the false ones below the true ones."""
    out = {}
    for r in REGIONS:
        predicted = [x for x in rows if x["region"] == r and x["predicted_components"] != "0"
                     and x.get("mean_probability") not in ("", None, "nan")]
        false = np.array([x["status"] == "false positive" for x in predicted])
        p = np.array([float(x["mean_probability"]) for x in predicted])
        out[r] = {"predicted_lesions": len(predicted), "false_positives": int(false.sum()),
                  "auroc_false_below_true": auroc(false, -p),
                  "median_probability_true": float(np.median(p[~false])) if (~false).any() else None,
                  "median_probability_false": float(np.median(p[false])) if false.any() else None}
    return out


def judge(rows: list[dict]) -> dict:
    """Per target, score and region: `failure_detection` over the pooled rows."""
    value = lambda row, key: float(row[key]) if row.get(key) not in ("", None) else np.nan  # noqa: E731
    return {target: {score: {r: failure_detection([value(x, f"{score}_{r}") for x in rows],
                                                  [value(x, f"{target}_{r}") for x in rows]) for r in REGIONS}
                     for score in SCORES} for target in TARGETS}


def draw_risk_coverage(ax, dice, scores: dict, title: str, unit: str = "cases") -> None:
    """One panel: the mean 1 - Dice of the most confident `unit` kept, by coverage, for each of `scores`
    ({label: confidences}), beside the oracle's (ranked by the true Dice) and a random ranking's."""
    coverage = np.arange(1, len(dice) + 1) / len(dice)
    ax.plot(coverage, selective_risks(dice, 1 - dice), "k--", label="oracle (true Dice)")
    ax.axhline((1 - dice).mean(), color="grey", linestyle=":", label="random")
    for (label, conf), colour in zip(scores.items(), ("tab:blue", "tab:orange")):
        ax.plot(coverage, selective_risks(conf, 1 - dice), color=colour, label=label)
    ax.set_title(title)
    ax.set_xlabel(f"coverage (most confident {unit} kept)")
    ax.set_ylabel(f"mean 1 - Dice of the kept {unit}")
    ax.set_ylim(bottom=0)


def save_risk_coverage(panels: list[tuple], path: Path) -> None:
    """A row of `draw_risk_coverage` panels, each (dice, scores, title[, unit]), saved as a picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4))
    for ax, panel in zip(axes, panels):
        draw_risk_coverage(ax, *panel)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot(rows: list[dict], path: Path) -> None:
    """Pooled risk-coverage curves per region: each confidence, the oracle and random (Dice)."""
    panels = []
    for r in REGIONS:
        dice = np.array([float(x[f"dice_{r}"]) for x in rows])
        scores = {score.replace("_", " "): np.array([float(x[f"{score}_{r}"]) for x in rows]) for score in SCORES}
        panels.append((dice, scores, f"{r}: {len(dice)} held-out cases"))
    save_risk_coverage(panels, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, lesion_rows = [], []
    for i, run in enumerate(args.runs, 1):
        print(f"[{i}/{len(args.runs)}] {run}", flush=True)
        cases, lesions = evaluate_run(run, args.out / run.name)
        rows, lesion_rows = rows + cases, lesion_rows + lesions
    keys = ["run", "case_id"] + [f"{k}_{r}" for k in ("dice", "lesion_dice", *SCORES) for r in REGIONS]
    with (args.out / "pooled_cases.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with (args.out / "pooled_lesions.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, list(lesion_rows[0]))
        writer.writeheader()
        writer.writerows(lesion_rows)
    result = {**judge(rows), "lesions": judge_lesions(lesion_rows)}
    (args.out / "failure_detection.json").write_text(json.dumps(result, indent=1))
    plot(rows, args.out / "risk_coverage.png")
    for target, name in TARGETS.items():
        print(f"\n{name}: | score | region | cases | failures < 0.8 | AURC | random | oracle | Spearman | AUROC |")
        for score in SCORES:
            for r in REGIONS:
                d = result[target][score][r]
                print(f"| {score} | {r} | {d['cases']} | {d['failures']} | {d['aurc']:.3f} | {d['aurc_random']:.3f} "
                      f"| {d['aurc_oracle']:.3f} | {d['spearman']} | {d['auroc_failure']} |")
    print("\nlesions: | region | predicted | false positives | AUROC (false below true) | median p true / false |")
    for r, d in result["lesions"].items():
        print(f"| {r} | {d['predicted_lesions']} | {d['false_positives']} | {d['auroc_false_below_true']} "
              f"| {d['median_probability_true']} / {d['median_probability_false']} |")
    if args.json:
        wt = result["dice"]["expected_dice"]["WT"]
        print_result({"bench": "case_confidence", "date": time.strftime("%Y-%m-%d"),
                      "runs": [str(r) for r in args.runs], "cases": len(rows), "result": result},
                     f"{len(rows)} cases: expected Dice's WT AURC {wt['aurc']:.3f} against random "
                     f"{wt['aurc_random']:.3f} and the oracle's {wt['aurc_oracle']:.3f}", args.json)


if __name__ == "__main__":
    main()
