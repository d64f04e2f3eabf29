"""On which cases should a single run choose its post-processing? Held-out scores of each choice.

    python bench/postprocess_cases.py --race DIR [--race DIR ...] [--json FILE]
    python bench/postprocess_cases.py --table FILE

DIR is a `bench/race3d_folds.py --arms single --out DIR` folder (its `single/` run, `data/train`
and `data/heldout`). The run's best model predicts every training, validation and held-out case
once, with the run's inference settings and no post-processing; then the two thresholds are chosen
(`inference/postprocess.choose_postprocessing`, for the lesion-wise Dice, GLI settings) on

- `validation`: the run's validation cases alone (what `--subset validation` gave before);
- `validation+train 8`: those and training cases up to 8 in all (`[postprocessing]`'s defaults,
  what `kerasbrain train` does when it ends), and `validation+train 16`: up to 16,

and each choice is scored on the held-out cases, beside no post-processing: mean lesion-wise and
whole-region Dice per region and the false-positive whole-tumour islands left. Beside them, how
reliable a choice on k cases is (`resampled`): k = 3, 8 and 16 cases drawn at random, 200 times,
from the run's 16 (its predictions are reused), the share of draws that removed no island and the
held-out lesion-wise WT of their choices. One JSON line per race folder; `--table` prints the
README's tables from them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from common import print_result  # noqa: E402

from kerasbrain.data.labels import REGIONS  # noqa: E402
from kerasbrain.data.layouts import discover, load_case  # noqa: E402
from kerasbrain.evaluation.postprocess_choice import choice_cases  # noqa: E402
from kerasbrain.evaluation.segmentation import lesion_dice_score  # noqa: E402
from kerasbrain.families import get_family  # noqa: E402
from kerasbrain.inference.postprocess import (choose_postprocessing, island_floor_ml, postprocess,  # noqa: E402
                                              postprocessing_scores)
from kerasbrain.inference.predict_volume import predict_case  # noqa: E402
from kerasbrain.metrics.lesion_wise import LesionSettings, lesion_wise_region_scores  # noqa: E402
from kerasbrain.metrics.numpy_metrics import region_scores  # noqa: E402

FLOOR = island_floor_ml("lesion", LesionSettings())  # ties go to it, as in `train`'s choice

#: (name, choose_on, max_cases): the validation cases alone, and with training cases up to 8 (the
#: default) and 16
CASE_SETS = (("validation", "validation", 16), ("validation+train 8", "validation+train", 8),
             ("validation+train 16", "validation+train", 16))
NAMES = ("off",) + tuple(name for name, _, _ in CASE_SETS)


def predicted(session, folder: Path, progress=print) -> dict:
    """{case id: (raw labels, truth, spacing)} for every labelled case in `folder`."""
    cfg = replace(session.config, min_component_ml=0.0, min_enhancing_ml=0.0)
    out = {}
    for files in discover(folder).labelled():
        case = load_case(files)
        raw, _ = predict_case(case, session.predict, session.channels, cfg, session.spacing)
        out[case.case_id] = (raw, case.labels, case.grid.spacing)
        progress(f"predicted {folder.name}/{case.case_id}")
    return out


def held_out_scores(cases: dict, pair: tuple[float, float]) -> dict:
    """Mean lesion-wise and whole-region Dice per region and false-positive WT islands, with `pair`."""
    lesion, legacy, islands = [], [], 0
    for raw, truth, spacing in cases.values():
        labels = postprocess(raw, spacing, *pair)
        scores, rows = lesion_wise_region_scores(labels, truth, spacing, LesionSettings())
        lesion.append([scores[f"lesion_dice_{r}"] for r in REGIONS])
        whole = region_scores(labels, truth, spacing)
        legacy.append([whole[f"dice_{r}"] for r in REGIONS])
        islands += sum(row["region"] == "WT" and row["status"] == "false positive" for row in rows)
    return {**{f"lesion_dice_{r}": round(float(v), 4) for r, v in zip(REGIONS, np.mean(lesion, axis=0))},
            **{f"dice_{r}": round(float(v), 4) for r, v in zip(REGIONS, np.mean(legacy, axis=0))},
            "false_wt_islands": int(islands)}


def race_line(race: Path, progress=print) -> dict:
    run = race / "single"
    family = get_family("unet3d")
    _, session = family.local_session(run / "best.keras")
    start = time.monotonic()
    train = predicted(session, race / "data" / "train", progress)
    heldout = predicted(session, race / "data" / "heldout", progress)
    split = json.loads((run / "split.json").read_text())
    line = {"bench": "postprocess_cases", "race": str(race), "backend": keras.backend.backend(),
            "date": time.strftime("%Y-%m-%d"), "train_cases": len(train), "heldout_cases": len(heldout),
            "epochs": sum(1 for _ in open(run / "history.csv")) - 1,
            "predict_seconds": round(time.monotonic() - start, 1), "off": held_out_scores(heldout, (0.0, 0.0))}
    tables = {c: postprocessing_scores(raw, truth, spacing, score=lesion_dice_score(spacing, LesionSettings()))
              for c, (raw, truth, spacing) in train.items()}
    for name, choose_on, max_cases in CASE_SETS:
        ids = choice_cases(split, choose_on, max_cases)
        pair, _ = choose_postprocessing([tables[c] for c in ids["validation"] + ids["train"]], FLOOR)
        line[name] = {"cases": len(ids["validation"] + ids["train"]), "min_component_ml": pair[0],
                      "min_enhancing_ml": pair[1], **held_out_scores(heldout, pair)}
    line["resampled"] = resampled(tables, heldout)
    return line


def resampled(tables: dict, heldout: dict, draws: int = 200, sizes=(3, 8, 16)) -> dict:
    """How a choice made on k cases drawn at random from the 16 fares on the held-out cases: for each k,
    over `draws` seeded draws, the share that chose no island removal and the held-out lesion-wise
    WT Dice of the choices (mean, worst)."""
    cache, out = {}, {}
    rng = np.random.default_rng(0)
    ids = sorted(tables)
    for k in sizes:
        wt, off = [], 0
        for _ in range(draws):
            cases = rng.choice(ids, size=min(k, len(ids)), replace=False)
            pair, _ = choose_postprocessing([tables[c] for c in cases], FLOOR)
            if pair not in cache:
                cache[pair] = held_out_scores(heldout, pair)["lesion_dice_WT"]
            wt.append(cache[pair])
            off += pair[0] == 0.0
        out[str(k)] = {"draws": draws, "chose_no_island_removal": round(off / draws, 3),
                       "heldout_lesion_dice_WT_mean": round(float(np.mean(wt)), 4),
                       "heldout_lesion_dice_WT_worst": round(float(np.min(wt)), 4)}
    return out


def resampled_table(path) -> str:
    lines = [json.loads(line) for line in open(path) if line.strip()]
    sizes = list(lines[0]["resampled"])
    out = ["| run | " + " | ".join(f"{k} cases: chose no island removal / held-out lesion-wise WT (worst)"
                                    for k in sizes) + " |", "|---" * (1 + len(sizes)) + "|"]
    for i, line in enumerate(lines, 1):
        cells = [f"{r['chose_no_island_removal']:.0%} / {r['heldout_lesion_dice_WT_mean']:.3f} "
                 f"({r['heldout_lesion_dice_WT_worst']:.3f})" for r in (line["resampled"][k] for k in sizes)]
        out.append(f"| {i} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def table(path) -> str:
    lines = [json.loads(line) for line in open(path) if line.strip()]
    out = ["| run | chosen on | islands / enhancing below (mL) | held-out lesion-wise Dice WT / TC / ET | "
           "Dice WT / TC / ET | false WT islands left |", "|---|---|---|---|---|---|"]
    for i, line in enumerate(lines, 1):
        for name in NAMES:
            r = line[name]
            what = "nothing (off)" if name == "off" else f"{name} ({r['cases']} cases)"
            pair = "-" if name == "off" else f"{r['min_component_ml']:g} / {r['min_enhancing_ml']:g}"
            out.append(f"| {i} | {what} | {pair} | " + " / ".join(f"{r[f'lesion_dice_{k}']:.3f}" for k in REGIONS)
                       + " | " + " / ".join(f"{r[f'dice_{k}']:.3f}" for k in REGIONS)
                       + f" | {r['false_wt_islands']} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--race", action="append", default=[], type=Path, help="A race3d_folds.py --out folder.")
    parser.add_argument("--json", help="Append one JSON line per race folder to this file.")
    parser.add_argument("--table", metavar="FILE", help="Only print FILE's lines as the README's table.")
    args = parser.parse_args()
    if args.table:
        print(table(args.table) + "\n\n" + resampled_table(args.table))
        return
    for race in args.race:
        line = race_line(race)
        summary = "; ".join(f"{name}: {line[name]['lesion_dice_WT']:.3f}" for name in NAMES)
        print_result(line, f"{race}: held-out lesion-wise WT {summary}", args.json)


if __name__ == "__main__":
    main()
