"""A 3-D U-Net trained for a fixed number of wall-clock minutes, scored on held-out phantom cases.

    python bench/race3d.py [--minutes 25] [--config bench/race3d_baseline.toml] [--difficulty hard]
                           [--cases 16] [--test-cases 6] [--shape 120 120 78] [--out DIR] [--json FILE]
                           [--inference config,plain,mirror,post,mirror+post] [--score-only]
                           [--set [SECTION.]KEY=VALUE ...] [--monai PYTHON]
    python bench/race3d.py --table RESULTS.jsonl     # the README's ablation table from --json lines

Writes MSD-layout phantoms (`kerasbrain synth msd --difficulty ...`): `--cases` to train on and
`--test-cases` more, from another seed, held out; the default shape is a 240 x 240 x 155 BraTS
volume at half size (the files say 1 mm voxels, so HD95 is in voxels of that grid). Trains
`kerasbrain train unet3d` with the config under `--minutes` of time budget (`--time-budget`: the
run ends cleanly and a cosine schedule follows the clock), then scores
`best.keras` on the held-out cases exactly as `kerasbrain evaluate` does and prints Dice and
HD95 (mm) per region, mean and range over cases. What it compares: recipes at equal wall-clock
budget on the same hardware (issue 14's ablation table).

`--inference` scores the one trained model several ways, one result line each, so the inference
choices of the ablation cost no extra training: `config` (the config's own `[inference]`), `plain`
(no mirroring, no post-processing), `mirror` (mirror TTA), `post` (`min_component_ml` and
`min_enhancing_ml` chosen on the run's validation cases, never the held-out ones) and
`mirror+post`. `--score-only` re-scores the run kept in `--out` instead of training again.
`--set training.lr_schedule="cosine"` changes one setting of the config (a TOML value), so each row
of an ablation is the baseline plus one change.

`--monai PYTHON` adds the reference row: MONAI's BasicUNet trained for the same minutes on the same
training cases by `bench/monai_reference.py` under PYTHON (an environment with torch and MONAI
beside the project; that file says how to make one), its predictions scored here exactly as
kerasbrain's. With `--score-only` only the reference runs.
"""

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402
import nibabel as nib  # noqa: E402

from common import print_result, run_monai_reference  # noqa: E402

from kerasbrain.data.labels import REGIONS  # noqa: E402
from kerasbrain.data.layouts import discover, load_case  # noqa: E402
from kerasbrain.data.phantom import write_dataset  # noqa: E402
from kerasbrain.evaluation.segmentation import summarise  # noqa: E402
from kerasbrain.families import InferenceOverrides, get_family  # noqa: E402
from kerasbrain.families.base import ScoringOptions  # noqa: E402
from kerasbrain.metrics.lesion_wise import lesion_wise_region_scores  # noqa: E402
from kerasbrain.metrics.numpy_metrics import region_scores  # noqa: E402

HERE = Path(__file__).resolve().parent
VARIANTS = ("config", "config+post", "plain", "mirror", "post", "mirror+post")


def ablation_table(lines: list[dict]) -> str:
    """Markdown rows, one per result line: what changed from the config, how it was scored, the scores."""
    rows = ["| change | inference | training (minutes) | WT | TC | ET | HD95 WT / TC / ET (mm) | per-case WT |",
            "|---|---|---|---|---|---|---|---|"]
    for r in lines:
        change = ", ".join(f"`{c}`" for c in r.get("set", [])) or f"none (`{r['config']}`)"
        change = "MONAI BasicUNet (reference)" if r.get("model") == "monai BasicUNet" else change
        length = f"{r['epochs']} epochs" if "epochs" in r else f"{r['steps']} steps"
        rows.append(f"| {change} | {r.get('inference', 'config')} | {length} ({r['minutes']}) | "
                    f"{r['dice_WT']:.3f} | {r['dice_TC']:.3f} | {r['dice_ET']:.3f} | "
                    f"{r['hd95_WT']:.1f} / {r['hd95_TC']:.1f} / {r['hd95_ET']:.1f} | "
                    f"{r['dice_WT_range'][0]:.2f}-{r['dice_WT_range'][1]:.2f} |")
    return "\n".join(rows)


def variant_overrides(variant: str, tuned: dict | None) -> InferenceOverrides:
    """The inference settings one way of scoring uses; `post` needs the thresholds chosen on validation."""
    post = tuned if "post" in variant else None
    if variant.startswith("config"):
        return InferenceOverrides(**(post or {}))
    post = post or {"min_component_ml": 0.0, "min_enhancing_ml": 0.0}
    return InferenceOverrides(mirror="mirror" in variant, **post)


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
                        help="Same as adding `post` to the config's own scoring (kept for older commands).")
    parser.add_argument("--inference", default="config",
                        help="Comma-separated ways to score the model: " + ", ".join(VARIANTS) + ".")
    parser.add_argument("--set", action="append", default=[], metavar="[SECTION.]KEY=VALUE",
                        help="Change one config setting (TOML value), e.g. model.deep_supervision=2; repeatable.")
    parser.add_argument("--postprocess-target", default="legacy", choices=["legacy", "lesion"],
                        help="`post` chooses its thresholds on validation cases for the whole-region (legacy) or the "
                             "BraTS 2023 lesion-wise Dice (GLI settings).")
    parser.add_argument("--score-only", action="store_true", help="Score the run kept in --out; do not train.")
    parser.add_argument("--out", help="Keep the data, run and scores here (default: a temporary folder).")
    parser.add_argument("--json", help="Append the result as one JSON line to this file.")
    parser.add_argument("--table", help="Print the markdown table of the result lines in this file, then stop.")
    parser.add_argument("--monai", metavar="PYTHON",
                        help="Also train MONAI's BasicUNet for --minutes with this interpreter (torch + MONAI).")
    args = parser.parse_args()
    if args.table:
        print(ablation_table([json.loads(line) for line in open(args.table) if line.strip()]))
        return

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="race3d_"))
    shape = tuple(args.shape)
    train_dir, test_dir = root / "data" / "train", root / "data" / "heldout"
    if not (train_dir / "dataset.json").exists():
        write_dataset(train_dir, "msd", args.cases, shape, args.seed, difficulty=args.difficulty)
        write_dataset(test_dir, "msd", args.test_cases, shape, args.seed + 1, difficulty=args.difficulty)
    variants = [v.strip() for v in args.inference.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--inference: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.tune_postprocessing and "config" in variants:
        variants[variants.index("config")] = "config+post"
    family = get_family("unet3d")
    config = family.load_config(args.config, args.set)
    run = root / "run"
    if args.score_only:
        if not (run / "best.keras").exists():
            parser.error(f"--score-only: {run / 'best.keras'} does not exist (train first with --out {root})")
        minutes, epochs = None, len(list(csv.DictReader(open(run / "history.csv"))))
        split = json.loads((run / "split.json").read_text())
        best = run / "best.keras"
    else:
        start = time.monotonic()
        result = family.train(train_dir, run, config, time_budget=args.minutes, epochs=1000, progress=print)
        minutes = round((time.monotonic() - start) / 60, 2)
        epochs = len(result["history"].get("loss", []))  # the last one may have been cut short by the budget
        split, best = result["split"], result["best"]
    data_shape = nib.load(next((test_dir / "imagesTr").glob("*.nii.gz"))).shape[:3]  # the kept data's, too
    tuned = None
    reference_only = args.score_only and args.monai
    if any("post" in v for v in variants) and split["validation"] and not reference_only:  # never on held-out
        family.evaluate(best, train_dir, root / "eval_validation", split["validation"], progress=print,
                        scoring=ScoringOptions(postprocess_target=args.postprocess_target))
        tuned = json.loads((root / "eval_validation" / "summary.json").read_text())["postprocessing"]
        tuned = {key: tuned[f"best_{key}"] for key in ("min_component_ml", "min_enhancing_ml")}
        print(f"post-processing chosen on {len(split['validation'])} validation cases: " +
              ", ".join(f"{key} = {value:g}" for key, value in tuned.items()))
    facts = {"backend": keras.backend.backend(), "config": Path(args.config).name, "set": args.set,
             "difficulty": args.difficulty, "cases": len(split["train"]) + len(split["validation"]),
             "shape": list(data_shape)}
    for variant in variants if not reference_only else ():
        overrides = variant_overrides(variant, tuned)
        out = root / f"eval_{variant.replace('+', '_')}"
        family.evaluate(best, test_dir, out, overrides=overrides, progress=print)
        summary = json.loads((out / "summary.json").read_text())
        rows = list(csv.DictReader(open(out / "cases.csv")))
        line = {**facts, "minutes": minutes, "epochs": epochs, "steps_per_epoch": config.training.steps_per_epoch,
                "inference": variant,
                "mirror": config.inference.mirror if overrides.mirror is None else overrides.mirror,
                "min_component_ml": overrides.min_component_ml or 0.0,
                "min_enhancing_ml": overrides.min_enhancing_ml or 0.0, "test_cases": len(rows),
                **({"postprocess_target": args.postprocess_target} if "post" in variant else {}),
                **region_lines(summary, rows)}
        print_result(line, f"held-out Dice WT/TC/ET {line['dice_WT']:.3f} / {line['dice_TC']:.3f} / "
                           f"{line['dice_ET']:.3f}, HD95 {line['hd95_WT']:.0f} / {line['hd95_TC']:.0f} / "
                           f"{line['hd95_ET']:.0f} mm after {minutes} min, {epochs} epochs of <= "
                           f"{config.training.steps_per_epoch} steps ({Path(args.config).name}, inference "
                           f"{variant}, {args.difficulty} phantoms)", args.json)
    if args.monai:
        monai = run_monai_reference(args.monai, "3d", root / "monai", data=train_dir, heldout=test_dir,
                                    split=run / "split.json", minutes=args.minutes)
        rows = score_label_files(test_dir, root / "monai" / "predictions")
        line = {**facts, "model": "monai BasicUNet", "minutes": monai["minutes"], "steps": monai["steps"],
                "inference": "sliding window (Gaussian)", "reference": monai, "test_cases": len(rows),
                **region_lines(summarise(rows), rows)}
        print_result(line, f"MONAI BasicUNet: held-out Dice WT/TC/ET {line['dice_WT']:.3f} / {line['dice_TC']:.3f} / "
                           f"{line['dice_ET']:.3f}, HD95 {line['hd95_WT']:.0f} / {line['hd95_TC']:.0f} / "
                           f"{line['hd95_ET']:.0f} mm after {monai['minutes']} min, {monai['steps']} steps", args.json)


def region_lines(summary: dict, rows: list[dict]) -> dict:
    """Mean Dice and HD95 per region (whole-region and BraTS 2023 lesion-wise, GLI), the range of Dice over
    cases and the false-positive islands in all, rounded for the result line."""
    line = {}
    for region in REGIONS:
        per_case = [float(row[f"dice_{region}"]) for row in rows]
        line[f"dice_{region}"] = round(summary[f"dice_{region}"]["mean"], 4)
        line[f"hd95_{region}"] = round(summary[f"hd95_{region}"]["mean"], 1)
        line[f"dice_{region}_range"] = [round(min(per_case), 2), round(max(per_case), 2)]
        if f"lesion_dice_{region}" in summary:
            line[f"lesion_dice_{region}"] = round(summary[f"lesion_dice_{region}"]["mean"], 4)
            line[f"lesion_hd95_{region}"] = round(summary[f"lesion_hd95_{region}"]["mean"], 1)
            line[f"lesions_fp_{region}"] = int(sum(float(row[f"lesions_fp_{region}"]) for row in rows))
    return line


def score_label_files(test_dir, predictions) -> list[dict]:
    """Per-case scores of label files named like the held-out cases, read as kerasbrain reads labels."""
    rows = []
    for files in discover(test_dir).labelled():
        truth = load_case(files)
        predicted = load_case(replace(files, label=Path(predictions) / f"{files.case_id}.nii.gz"))
        spacing = truth.grid.spacing
        lesion_scores, _ = lesion_wise_region_scores(predicted.labels, truth.labels, spacing)
        rows.append({"case_id": files.case_id, **region_scores(predicted.labels, truth.labels, spacing),
                     **lesion_scores})
    return rows

if __name__ == "__main__":
    main()
