"""A 3-D run's post-processing, chosen when its training ends (nnU-Net's step, for one model).

nnU-Net decides its connected-component post-processing on the out-of-fold predictions of its
cross-validation, and `kerasbrain crossval` does the same for folds. A single run left it to the
user (`evaluate --subset validation`, then the config), so a new user's model kept every stray
island, and BraTS 2023's lesion-wise Dice scores each island as a lesion at Dice 0 (on the hard
phantoms, held-out lesion-wise WT 0.63 without the choice, 0.89 with it: README). Here the run chooses the two thresholds of
`inference/postprocess.py` itself, as `[postprocessing]` asks (`training/config.py`):

- on its validation cases and, by default, training cases up to `max_cases` in all: the three
  validation cases of a 16-case dataset may hold no false island (none did in the three seeds of
  the fold race; 12-13 % of random 3-case draws removed nothing), and then every threshold ties and
  the islands of new cases above the tie's floor stay; the training cases'
  predictions carry the same kind of islands, and a threshold that removed a real satellite lesion
  there would lose on them too;
- with the run's own inference settings (window, mirror TTA, threshold), after the fixed speck
  rule (`min_part_ml`) and before the two chosen rules;
- for the lesion-wise Dice (BraTS 2023, `target = "lesion"`) or the whole-region Dice; for the
  lesion-wise Dice, ties go to removing islands below the smallest lesion it scores
  (`inference/postprocess.island_floor_ml`), so that cases without islands do not choose "off".

The choice goes into the run's `config.json` (`[inference]`), so evaluate, predict, export, serving
and the app apply it unchanged, and into `postprocessing.json`: every candidate's mean score, each
case's islands and scores, and the SHA-256 of the model it was made for (a run that trained on is
chosen again; the same model is not predicted twice).
"""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

RECORD = "postprocessing.json"  # in the run folder


def choice_cases(split: dict, choose_on: str, max_cases: int, seed: int = 0) -> dict[str, list[str]]:
    """The case ids the choice is made on: every validation case (up to `max_cases`), then, for
    "validation+train", training cases drawn with `seed` until `max_cases`."""
    validation = list(split.get("validation", []))[:max_cases]
    train = []
    if choose_on == "validation+train":
        pool = sorted(split.get("train", []))
        random.Random(seed).shuffle(pool)
        train = sorted(pool[: max(max_cases - len(validation), 0)])
    return {"validation": validation, "train": train}


def island_volumes_ml(labels: np.ndarray, spacing) -> list[float]:
    """Volumes (mL) of the whole tumour's connected parts (26 neighbours), largest first."""
    from scipy import ndimage

    from kerasbrain.inference.postprocess import voxel_ml

    components, count = ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(components.ravel())[1:] * voxel_ml(spacing) if count else np.zeros(0)
    return sorted((round(float(v), 4) for v in sizes), reverse=True)


def choose_on_cases(cases, predict, target: str = "lesion", lesion=None, progress=print) -> dict:
    """Choose both thresholds on `cases`, pairs (subset, `Case`); `predict(case)` gives the raw label
    map (before post-processing). Returns the record without the model's digest."""
    from kerasbrain.data.labels import REGIONS
    from kerasbrain.evaluation.segmentation import lesion_dice_score
    from kerasbrain.inference.postprocess import choose_postprocessing, island_floor_ml, postprocessing_scores
    from kerasbrain.metrics.lesion_wise import LesionSettings

    lesion = lesion or LesionSettings()
    tuning, rows = [], []
    for i, (subset, case) in enumerate(cases, 1):
        raw = predict(case)
        spacing = case.grid.spacing
        score = lesion_dice_score(spacing, lesion) if target == "lesion" else None
        scores = postprocessing_scores(raw, case.labels, spacing, score=score)
        tuning.append(scores)
        rows.append({"case_id": case.case_id, "subset": subset, "islands_ml": island_volumes_ml(raw, spacing),
                     "off": [round(float(v), 4) for v in scores[0.0, 0.0]]})
        progress(f"post-processing [{i}/{len(cases)}] {case.case_id} ({subset}): "
                 f"{len(rows[-1]['islands_ml'])} tumour part(s), mean {target} Dice {np.mean(scores[0.0, 0.0]):.3f}")
    floor = island_floor_ml(target, lesion)
    (component, enhancing), means = choose_postprocessing(tuning, floor)
    for row, scores in zip(rows, tuning):
        row["chosen"] = [round(float(v), 4) for v in scores[component, enhancing]]
    return {"min_component_ml": component, "min_enhancing_ml": enhancing, "target": target,
            "lesion": {"preset": lesion.preset, "dilation": lesion.dilation, "min_volume_mm3": lesion.min_volume},
            "island_floor_ml": floor, "regions": list(REGIONS), "cases": rows,
            "mean_off": round(means[0.0, 0.0], 6), "mean_chosen": round(means[component, enhancing], 6),
            "means": [{"min_component_ml": c, "min_enhancing_ml": e, "mean": round(m, 6)}
                      for (c, e), m in sorted(means.items())]}


def choose_run_postprocessing(run_dir, data_dir, inference, open_session, settings, split_seed: int = 0,
                              progress=print) -> dict | None:
    """Choose `run_dir`'s post-processing as `settings` (`PostprocessingConfig`) asks, with its
    `inference` settings (`InferenceConfig`) and `open_session()` (the family's `VolumeSession` of
    its best model, opened only when cases are predicted), write `RECORD` and set the choice in its
    `config.json`. None when `choose_on` is "off" or the run has no case to choose on."""
    import json

    from kerasbrain.data.layouts import discover, load_case
    from kerasbrain.files import write_json
    from kerasbrain.inference.predict_volume import predict_case
    from kerasbrain.metrics.lesion_wise import LesionSettings
    from kerasbrain.runs import BEST_MODEL, SPLIT_FILE, model_digest

    run_dir = Path(run_dir)
    if settings.choose_on == "off":
        return None
    raw_cfg = replace(inference, min_component_ml=0.0, min_enhancing_ml=0.0)
    # what the choice depends on (JSON's types, to compare with a record read back)
    asked = json.loads(json.dumps({**asdict(settings), "inference": asdict(raw_cfg),
                                   "model_sha256": model_digest(run_dir / BEST_MODEL), "rule": _rule()}))
    path = run_dir / RECORD
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("asked") == asked:  # the same model and settings: only set the choice again
            _set_in_config(run_dir, record)
            return record
    ids = choice_cases(json.loads((run_dir / SPLIT_FILE).read_text()), settings.choose_on, settings.max_cases,
                       split_seed)
    if not ids["validation"] + ids["train"]:
        progress("post-processing: no case to choose on; [inference] keeps its thresholds")
        return None
    found = {c.case_id: c for c in discover(data_dir).labelled()}
    cases = [(subset, load_case(found[cid])) for subset in ("validation", "train") for cid in ids[subset]]
    session = open_session()
    progress(f"choosing post-processing for the {settings.target} Dice on {len(ids['validation'])} validation "
             f"and {len(ids['train'])} training cases")

    def predict(case):
        return predict_case(case, session.predict, session.channels, raw_cfg, session.spacing)[0]

    record = {**choose_on_cases(cases, predict, settings.target, LesionSettings.of(settings.lesion_preset), progress),
              "asked": asked}
    write_json(path, record)
    _set_in_config(run_dir, record)
    progress(f"post-processing: min_component_ml = {record['min_component_ml']:g}, min_enhancing_ml = "
             f"{record['min_enhancing_ml']:g} (mean {settings.target} Dice {record['mean_off']:.4f} with both off, "
             f"{record['mean_chosen']:.4f} with these), set in {run_dir / 'config.json'}")
    return record


def _rule() -> dict:
    """The candidates and the tie rule a choice is made with: a record made under others is made again."""
    from kerasbrain.inference.postprocess import COMPONENT_CANDIDATES_ML, ENHANCING_CANDIDATES_ML

    return {"islands_ml": list(COMPONENT_CANDIDATES_ML), "enhancing_ml": list(ENHANCING_CANDIDATES_ML),
            "ties": "island_floor_ml"}


def _set_in_config(run_dir: Path, record: dict) -> None:
    """Write the chosen thresholds into the run's config.json `[inference]`."""
    from kerasbrain.files import write_json
    from kerasbrain.runs import CONFIG_FILE, read_run_config

    config = read_run_config(run_dir)
    config.setdefault("inference", {}).update(min_component_ml=record["min_component_ml"],
                                              min_enhancing_ml=record["min_enhancing_ml"])
    write_json(run_dir / CONFIG_FILE, config)
