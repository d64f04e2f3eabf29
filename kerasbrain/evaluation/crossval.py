"""`kerasbrain crossval`: configurations and their ensembles scored on out-of-fold predictions, the best kept.

nnU-Net's `find_best_configuration`, for kerasbrain's cross-validation folders (`train unet3d --fold
all`, each `fold_K/` with its `oof/` probabilities): every configuration alone and every ensemble of
two or more (the mean of their probabilities) is scored on every training case, each with the
post-processing (`min_component_ml`, `min_enhancing_ml`) that suits it best on the same
out-of-fold cases (after the fixed speck rule, the first configuration's `min_part_ml`), by the
metric the user names: the mean WT/TC/ET whole-region ("legacy") Dice, or BraTS 2023's
lesion-wise Dice. The winner is written as an ensemble file that `predict`,
`evaluate` and the app take like a model (`inference/ensemble.py`): every fold model of its
configurations, equally weighted per configuration, with the chosen post-processing.

Cases are read one at a time and every candidate is scored on it before the next, so memory holds
one case's probabilities per configuration, whatever the dataset's size.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from kerasbrain.data.labels import REGIONS, regions_to_labels
from kerasbrain.evaluation.out_of_fold import OOF_DIR, read_out_of_fold
from kerasbrain.files import write_json, write_text
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.postprocess import (choose_postprocessing, island_floor_ml, postprocessing_scores,
                                              remove_specks)

ENSEMBLE_FILE = "ensemble.json"
METRICS = ("legacy", "lesion")


def configuration(cv_dir) -> dict:
    """One cross-validation folder: its name, fold models, out-of-fold files by case and inference settings."""
    cv_dir = Path(cv_dir)
    folds = sorted(cv_dir.glob("fold_*"), key=lambda p: int(p.name.split("_")[1]))
    if not folds:
        raise ValueError(f"{cv_dir}: no fold_K folders (train with `kerasbrain train unet3d --fold all`)")
    oof = {}
    for fold in folds:
        if not (fold / "best.keras").exists():
            raise ValueError(f"{fold}: no best.keras (the fold has not finished training)")
        for path in sorted((fold / OOF_DIR).glob("*.npz")):
            oof[path.stem] = path
    inference = json.loads((folds[0] / "config.json").read_text()).get("inference", {})
    return {"name": cv_dir.name, "dir": cv_dir, "models": [f / "best.keras" for f in folds], "oof": oof,
            "threshold": float(inference.get("threshold", 0.5)),
            "min_part_ml": float(inference.get("min_part_ml", InferenceConfig.min_part_ml))}


def candidates(configs: list[dict]) -> list[tuple[int, ...]]:
    """Every configuration alone, then every ensemble of two or more (indices into `configs`)."""
    n = len(configs)
    return [c for size in range(1, n + 1) for c in itertools.combinations(range(n), size)]


def _score_fn(metric: str, spacing, lesion):
    if metric == "legacy":
        return None  # postprocessing_scores' default: the whole-region Dice
    from kerasbrain.evaluation.segmentation import lesion_dice_score

    return lesion_dice_score(spacing, lesion)


def crossval(runs, data_dir, out, metric: str = "legacy", lesion=None, progress=print) -> dict:
    """Score `runs` (cross-validation folders) and their ensembles on their out-of-fold cases; write
    crossval.json, crossval.md, crossval.png and the winner's ensemble.json (with config.json and run.json)
    to `out`."""
    from kerasbrain.data.layouts import discover, load_case
    from kerasbrain.metrics.lesion_wise import LesionSettings

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}. Received: metric={metric!r}")
    lesion = lesion or LesionSettings()
    configs = [configuration(r) for r in runs]
    names = [c["name"] for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configurations need distinct folder names; got {names}")
    case_ids = sorted(configs[0]["oof"])
    for c in configs[1:]:
        if sorted(c["oof"]) != case_ids:
            raise ValueError(f"{c['dir']} and {configs[0]['dir']} hold out-of-fold predictions of different cases "
                             "(train every configuration on the same dataset's folds)")
    if not case_ids:
        raise ValueError(f"{configs[0]['dir']}: no out-of-fold predictions (fold_K/oof/)")
    files = {c.case_id: c for c in discover(data_dir).labelled()}
    missing = [c for c in case_ids if c not in files]
    if missing:
        raise ValueError(f"{data_dir}: has no labelled cases {missing[:5]} that the folds predicted")
    threshold, min_part_ml = configs[0]["threshold"], configs[0]["min_part_ml"]
    combos = candidates(configs)
    tuning = {combo: [] for combo in combos}
    for i, case_id in enumerate(case_ids, 1):
        case = load_case(files[case_id])
        probabilities = [read_out_of_fold(c["oof"][case_id]) for c in configs]
        score = _score_fn(metric, case.grid.spacing, lesion)
        for combo in combos:
            mean = np.mean([probabilities[j] for j in combo], axis=0)
            raw = remove_specks(regions_to_labels(mean >= threshold), case.grid.spacing, min_part_ml)
            tuning[combo].append(postprocessing_scores(raw, case.labels, case.grid.spacing, score=score))
        progress(f"crossval {i}/{len(case_ids)} {case_id}")
    rows = []
    for combo in combos:
        (component, enhancing), means = choose_postprocessing(tuning[combo], island_floor_ml(metric, lesion))
        per_region = np.mean([case[component, enhancing] for case in tuning[combo]], axis=0)
        rows.append({"candidate": " + ".join(names[j] for j in combo), "members": [names[j] for j in combo],
                     "score_off": means[0.0, 0.0], "score": means[component, enhancing],
                     **{f"{metric}_dice_{r}": float(v) for r, v in zip(REGIONS, per_region)},
                     "min_component_ml": component, "min_enhancing_ml": enhancing})
    best = max(rows, key=lambda r: (r["score"], -len(r["members"])))  # ties: the smaller ensemble
    out = Path(out)
    written = write_ensemble(out, [c for c in configs if c["name"] in best["members"]], best, metric)
    what = "Dice" if metric == "legacy" else "lesion-wise Dice"
    table = [f"| candidate | mean WT/TC/ET {what}, no post-processing | with its post-processing | "
             + " | ".join(REGIONS) + " | min_component_ml | min_enhancing_ml |", "|---" * (6 + len(REGIONS)) + "|"]
    for r in sorted(rows, key=lambda r: -r["score"]):
        mark = " (best)" if r is best else ""
        table.append(f"| {r['candidate']}{mark} | {r['score_off']:.4f} | {r['score']:.4f} | "
                     + " | ".join(f"{r[f'{metric}_dice_{x}']:.4f}" for x in REGIONS)
                     + f" | {r['min_component_ml']:g} | {r['min_enhancing_ml']:g} |")
    table = "\n".join(table) + (f"\n\nScored on {len(case_ids)} out-of-fold cases; the best, {best['candidate']}, "
                                f"is {out / ENSEMBLE_FILE}.")
    write_json(out / "crossval.json", {"metric": metric, "cases": case_ids, "candidates": rows,
                                       "best": best["candidate"]})
    write_text(out / "crossval.md", table + "\n")
    from kerasbrain.evaluation.figures import save_candidate_scores

    figure = save_candidate_scores(out / "crossval.png", rows, what)
    return {"rows": rows, "best": best, "table": table,
            "files": [out / "crossval.json", out / "crossval.md", figure, *written]}


def write_ensemble(out: Path, configs: list[dict], best: dict, metric: str) -> list[Path]:
    """ensemble.json (every fold model of `configs`, each configuration weighing the same), with the first
    member's config.json carrying the chosen post-processing and a run.json naming the family."""
    from kerasbrain.runs import CONFIG_FILE, write_run_info

    out.mkdir(parents=True, exist_ok=True)
    members = []
    for c in configs:
        for model in c["models"]:
            members.append({"model": str(Path(model).resolve()), "weight": 1.0 / (len(configs) * len(c["models"])),
                            "configuration": c["name"]})
    ensemble = {"kind": "kerasbrain-ensemble", "family": "unet3d", "members": members, "chosen_by": metric,
                "score": best["score"], "candidate": best["candidate"],
                "postprocessing": {"min_component_ml": best["min_component_ml"],
                                   "min_enhancing_ml": best["min_enhancing_ml"]}}
    config = json.loads((Path(configs[0]["models"][0]).parent / CONFIG_FILE).read_text())
    config.setdefault("inference", {}).update(ensemble["postprocessing"])
    write_json(out / CONFIG_FILE, config)
    write_run_info(out, "unet3d")
    return [write_json(out / ENSEMBLE_FILE, ensemble), out / CONFIG_FILE]
