"""Seed 000's baseline-vs-multi-task table: a single-task classifier and the multi-task network.

Both runs use the same data split, seed, encoder, image size, optimiser and number of epochs (and
the same time budget when one is given), through the `classifier` and `multitask` families; each
is scored on the shipped test images. The table has seed 000's columns (accuracy, macro F1) plus
macro ROC-AUC; curves of validation class accuracy and loss per epoch go beside it. `quick=True`
shrinks the runs so the experiment finishes in minutes on a CPU (phantom data).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from kerasbrain.experiments.published import beside_published
from kerasbrain.files import write_csv, write_json, write_text
from kerasbrain.runs import SPLIT_FILE
from kerasbrain.training.config_multitask import MultiTaskConfig

COLUMNS = ("model", "accuracy", "macro_f1", "macro_roc_auc")
TITLES = {"classifier": "ResNet supervised (single-task)", "multitask": "ResNet multi-task (class + mask)"}


def quick_config(config: MultiTaskConfig) -> MultiTaskConfig:
    return replace(config, data=replace(config.data, image_size=64),
                   model=replace(config.model, decoder_filters=(32, 16, 16, 8, 8)),
                   training=replace(config.training, batch_size=8, epochs=2))


def run_multitask_compare(data_dir, out_dir, config: MultiTaskConfig | None = None, quick: bool = False,
                          time_budget: float | None = None, progress=print) -> dict:
    from kerasbrain.families import get_family

    out_dir = Path(out_dir)
    config = config or MultiTaskConfig()
    if quick:
        config = quick_config(config)
    rows, histories = [], {}
    first_split = None
    for name in ("classifier", "multitask"):
        family = get_family(name)
        run = out_dir / name
        if first_split is not None and not (run / SPLIT_FILE).exists():  # the same images for both
            run.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(first_split, run / SPLIT_FILE)
        progress(f"== {name}")
        result = family.train(data_dir, run, config, time_budget=time_budget, progress=progress)
        first_split = first_split or run / SPLIT_FILE
        test = json.loads((run / SPLIT_FILE).read_text())["test"] or None
        family.evaluate(run, data_dir, run / "evaluation", test, progress=progress)
        scores = json.loads((run / "evaluation" / "summary.json").read_text())["classes"]
        rows.append({"model": TITLES[name], **{k: scores[k] for k in COLUMNS[1:]}})
        histories[name] = result["history"]
    table = ["| Model | Accuracy | Macro F1 | Macro ROC-AUC |", "|---|---:|---:|---:|"]
    table += [f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['macro_roc_auc']:.4f} |" for r in rows]
    table = "\n".join(table)
    comparison = beside_published("seed000", rows, "model", COLUMNS[1:])
    write_csv(out_dir / "results.csv", rows, COLUMNS)
    write_text(out_dir / "results.md", f"{table}\n\n## Beside seed 000's published table\n\n{comparison}\n")
    write_json(out_dir / "histories.json", histories, indent=None)
    curves = save_curves(out_dir / "training_curves.png", histories)
    return {"rows": rows, "table": table, "comparison": comparison, "curves": curves, "out_dir": out_dir}


def save_curves(path, histories: dict) -> Path:
    """Validation class accuracy and class loss per epoch, baseline against multi-task."""
    from kerasbrain.evaluation.figures import save_history_curves

    series = {TITLES[name]: [h.get("val_class_accuracy", h.get("val_accuracy", [])),
                             h.get("val_class_loss", h.get("val_loss", []))] for name, h in histories.items()}
    return save_history_curves(path, series, ("validation class accuracy", "validation class loss (cross-entropy)"))
