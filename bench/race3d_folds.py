"""nnU-Net's workflow against one long run, at equal training time, on hard phantoms (issue 29).

    python bench/race3d_folds.py [--minutes 25] [--folds 5] [--config cpu_budget_unet3d] [--seed 1]
                                 [--metric lesion|legacy] [--out DIR] [--json FILE]

On the phantoms `bench/race3d.py` makes (`--cases` to train on, `--test-cases` held out, from seed +
1), three arms, all scored on the held-out cases exactly as `kerasbrain evaluate` does:

- `single`: one model trained for `--minutes` (`kerasbrain train unet3d --time-budget`), with the
  post-processing it chose when its training ended (`[postprocessing]`, for `--metric`);
- `folds ensemble`: `--folds` models of `--minutes / --folds` each (`--fold all`), the ensemble and
  its post-processing chosen on the out-of-fold cases by `kerasbrain crossval`;
- `one fold`: fold 0's model alone with the same post-processing (what the ensemble adds).

Each result line has the training wall minutes, the prediction seconds per held-out case (the
ensemble runs every member), whole-region and lesion-wise scores. Post-processing is chosen for
`--metric` (lesion: BraTS 2023 lesion-wise Dice, GLI settings; legacy: whole-region Dice).
`--arms` picks which to train and score; a kept `--out` resumes what is finished.
`--table FILE` prints the lines of FILE as one Markdown table, every seed's row and, per arm, the
mean and the range over seeds (what the README shows).
"""

from __future__ import annotations

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
from race3d import region_lines  # noqa: E402

from kerasbrain.data.phantom import GENERATORS, write_dataset  # noqa: E402
from kerasbrain.evaluation.crossval import crossval  # noqa: E402
from kerasbrain.families import InferenceOverrides, get_family  # noqa: E402

ARMS = ("single", "folds")
SCORES = [f"{kind}dice_{r}" for kind in ("", "lesion_") for r in ("WT", "TC", "ET")]


def table(path) -> str:
    """Every seed's line of each arm in `path`, then each arm's mean and range over the seeds."""
    import statistics

    lines = [json.loads(line) for line in open(path) if line.strip()]
    out = ["| arm | seed | Dice WT / TC / ET | lesion-wise Dice WT / TC / ET | prediction per case |",
           "|---|---|---|---|---|"]
    arms = list(dict.fromkeys(line["arm"] for line in lines))
    for arm in arms:
        rows = sorted((line for line in lines if line["arm"] == arm), key=lambda line: line["seed"])
        for r in rows:
            out.append(f"| {arm} | {r['seed']} | " + " / ".join(f"{r[k]:.3f}" for k in SCORES[:3]) + " | "
                       + " / ".join(f"{r[k]:.3f}" for k in SCORES[3:]) + f" | {r['predict_seconds_per_case']:.1f} s |")
        if len(rows) > 1:
            cell = lambda k: (f"{statistics.mean(r[k] for r in rows):.3f} "  # noqa: E731
                              f"({min(r[k] for r in rows):.2f}-{max(r[k] for r in rows):.2f})")
            out.append(f"| **{arm}: mean (range)** | {len(rows)} seeds | " + " / ".join(cell(k) for k in SCORES[:3])
                       + " | " + " / ".join(cell(k) for k in SCORES[3:]) + " | |")
    return "\n".join(out)


def _epochs(run_dirs) -> int:
    """Training epochs summed over run folders (history.csv rows)."""
    epochs = 0
    for run in run_dirs:
        history = Path(run) / "history.csv"
        epochs += len(list(csv.DictReader(open(history)))) if history.exists() else 0
    return epochs


def train_single(family, train_dir, run, config, minutes, progress=print) -> tuple[dict, float | None]:
    """One model for `minutes`, with the post-processing `train` chose when it ended (`[postprocessing]`:
    validation and training cases by default; `--set postprocessing.choose_on="validation"` for the
    validation cases alone, as the rows of 2026-12-05 did)."""
    spent = None
    if not (run / "best.keras").exists():
        start = time.monotonic()
        family.train(train_dir, run, config, time_budget=minutes, epochs=1000, progress=progress)
        spent = round((time.monotonic() - start) / 60, 2)
    family.choose_postprocessing(run, train_dir, config, progress)  # a run kept from before sets its choice
    inference = json.loads((run / "config.json").read_text())["inference"]
    return {key: inference[key] for key in ("min_component_ml", "min_enhancing_ml")}, spent


def train_folds(family, train_dir, cv, config, minutes, folds, metric, progress=print) -> tuple[dict, float | None]:
    """`folds` models of `minutes / folds` each, then crossval's ensemble and post-processing."""
    spent = None
    if not all((cv / f"fold_{k}" / "best.keras").exists() for k in range(folds)):
        start = time.monotonic()
        family.train(train_dir, cv, config, time_budget=minutes / folds, epochs=1000, progress=progress, fold="all")
        spent = round((time.monotonic() - start) / 60, 2)
    result = crossval([cv], train_dir, cv.parent / "crossval", metric=metric, progress=progress)
    best = result["best"]
    return {key: best[key] for key in ("min_component_ml", "min_enhancing_ml")}, spent


def score(family, model, test_dir, out, post: dict) -> tuple[dict, list[dict], float]:
    """Held-out scores of `model` with `post`; seconds of prediction per case."""
    start = time.monotonic()
    family.evaluate(model, test_dir, out, overrides=InferenceOverrides(**post), progress=print)
    seconds = time.monotonic() - start
    rows = list(csv.DictReader(open(out / "cases.csv")))
    return json.loads((out / "summary.json").read_text()), rows, round(seconds / max(len(rows), 1), 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=25.0, help="Training minutes of each arm in all.")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--config", default="cpu_budget_unet3d", help="A TOML file or a shipped config's name.")
    parser.add_argument("--set", action="append", default=[], metavar="[SECTION.]KEY=VALUE")
    parser.add_argument("--difficulty", default="hard", choices=["easy", "hard"])
    parser.add_argument("--generator", default="shapes", choices=list(GENERATORS), help="Phantom generator.")
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--test-cases", type=int, default=6)
    parser.add_argument("--shape", type=int, nargs=3, default=(120, 120, 78))
    parser.add_argument("--seed", type=int, default=1, help="Training cases' and training seed; held-out: seed + 1.")
    parser.add_argument("--metric", default="lesion", choices=["lesion", "legacy"])
    parser.add_argument("--arms", default="single,folds", help="Comma-separated: " + ", ".join(ARMS))
    parser.add_argument("--out", help="Keep data, runs and scores here (default: a temporary folder).")
    parser.add_argument("--json", help="Append each result as one JSON line to this file.")
    parser.add_argument("--table", metavar="FILE", help="Only print FILE's lines as a table across seeds.")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if set(arms) - set(ARMS):
        parser.error(f"--arms: choose from {', '.join(ARMS)}")

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="race3d_folds_"))
    train_dir, test_dir = root / "data" / "train", root / "data" / "heldout"
    if not (train_dir / "dataset.json").exists():
        for folder, cases, seed in ((train_dir, args.cases, args.seed), (test_dir, args.test_cases, args.seed + 1)):
            write_dataset(folder, "msd", cases, tuple(args.shape), seed, difficulty=args.difficulty,
                          generator=args.generator)
    family = get_family("unet3d")
    config = family.load_config(args.config, [f"postprocessing.target={json.dumps(args.metric)}"] + args.set +
                                [f"training.seed={args.seed}", f"data.folds={args.folds}"])
    facts = {"bench": "race3d_folds", "backend": keras.backend.backend(), "config": args.config, "set": args.set,
             "difficulty": args.difficulty, "generator": args.generator, "seed": args.seed, "train_cases": args.cases,
             "test_cases": args.test_cases, "shape": list(args.shape), "budget_minutes": args.minutes,
             "metric": args.metric, "date": time.strftime("%Y-%m-%d")}
    results = []
    if "single" in arms:
        post, spent = train_single(family, train_dir, root / "single", config, args.minutes)
        results.append(("single", root / "single" / "best.keras", post, spent, [root / "single"], 1))
    if "folds" in arms:
        post, spent = train_folds(family, train_dir, root / "folds", config, args.minutes, args.folds, args.metric)
        fold_runs = [root / "folds" / f"fold_{k}" for k in range(args.folds)]
        results.append(("folds ensemble", root / "crossval" / "ensemble.json", post, spent, fold_runs, args.folds))
        results.append(("one fold", fold_runs[0] / "best.keras", post, None, fold_runs[:1], 1))
    for arm, model, post, spent, runs, networks in results:
        summary, rows, per_case = score(family, model, test_dir, root / f"heldout_{arm.replace(' ', '_')}", post)
        line = {**facts, "arm": arm, "networks": networks, "training_wall_minutes": spent,
                "epochs": _epochs(runs), "predict_seconds_per_case": per_case, **post,
                **region_lines(summary, rows)}
        print_result(line, f"{arm}: held-out Dice WT/TC/ET {line['dice_WT']:.3f} / {line['dice_TC']:.3f} / "
                           f"{line['dice_ET']:.3f}, lesion-wise {line['lesion_dice_WT']:.3f} / "
                           f"{line['lesion_dice_TC']:.3f} / {line['lesion_dice_ET']:.3f}, {per_case} s per case",
                     args.json)


if __name__ == "__main__":
    main()
