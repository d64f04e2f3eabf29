"""Seed 004's four-way comparison: {raw, median + CLAHE} x {ResNet50, EfficientNet-B0} U-Nets on LGG.

Each variant is trained with seed 004's two-stage fine-tuning on the same patient split, then
scored on the held-out test patients. The table has seed 004's columns (Dice, IoU, Accuracy,
Precision, Recall, Val loss); Dice and IoU are means over test images (seed 004 averages per
image), the pixel-pooled values are in each variant's evaluation folder. `quick=True` shrinks the
runs so the whole experiment finishes in minutes on a CPU (phantom data).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kerasbrain.experiments.published import beside_published
from kerasbrain.files import write_csv, write_json, write_text
from kerasbrain.training.config2d import SliceConfig, Stage, load_slice_config

COLUMNS = ("variant", "dice", "iou", "accuracy", "precision", "recall", "val_loss")


def variant_config(base: SliceConfig, encoder: str, enhance: bool, quick: bool,
                   encoder_weights: str | None = None) -> SliceConfig:
    """Seed 004's config for one variant; `encoder_weights` None keeps the seed's ("imagenet"), except with
    `quick` (phantom data in the suite), which starts from random encoders unless told otherwise."""
    weights = encoder_weights if encoder_weights is not None else ("" if quick else base.model.encoder_weights)
    config = replace(base, model=replace(base.model, encoder=encoder, encoder_weights=weights),
                     data=replace(base.data, enhance=enhance))
    if quick:
        config = replace(config, stages=(Stage(1, 1e-3, True), Stage(1, 1e-4, False)),
                         training=replace(config.training, batch_size=4, max_slices=24))
    return config


def run_lgg_compare(data_dir, out_dir, encoders=("resnet50", "efficientnet_b0"), quick: bool = False,
                    progress=print, encoder_weights: str | None = None) -> dict:
    from kerasbrain.evaluation.slices import evaluate_slices
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.training.train_unet2d import split_slices, train_unet2d

    out_dir = Path(out_dir)
    base = load_slice_config("seed004_resnet50")
    rows, histories = [], {}
    for enhance in (False, True):
        for encoder in encoders:
            name = f"{'preprocessed' if enhance else 'raw'}-{encoder}"
            progress(f"== {name}")
            config = variant_config(base, encoder, enhance, quick, encoder_weights)
            run = out_dir / name
            result = train_unet2d(data_dir, run, config, verbose=2 if quick else "auto", progress=progress)
            subsets, _ = split_slices(data_dir, config, run)
            test = subsets["test"] or subsets["validation"]
            scores = evaluate_slices(load_model(result["best"]), test, run / "evaluation", enhance, progress=progress)
            images = scores["summary"]["images"]
            rows.append({"variant": name, **{k: images[k] for k in COLUMNS[1:6]},
                         "val_loss": min(result["history"]["val_loss"])})
            histories[name] = result["history"]
    write_csv(out_dir / "results.csv", rows, COLUMNS)
    table = ["| Model | Dice | IoU | Accuracy | Precision | Recall | Val loss |", "|---|---|---|---|---|---|---|"]
    table += [f"| {r['variant']} | " + " | ".join(f"{r[k]:.4f}" for k in COLUMNS[1:]) + " |" for r in rows]
    table = "\n".join(table)
    comparison = beside_published("seed004", rows, "variant", COLUMNS[1:])
    write_text(out_dir / "results.md", f"{table}\n\n## Beside seed 004's published table\n\n{comparison}\n")
    write_json(out_dir / "histories.json", histories, indent=None)
    curves = save_curves(out_dir / "training_curves.png", histories)
    return {"rows": rows, "table": table, "comparison": comparison, "curves": curves, "out_dir": out_dir}


def save_curves(path, histories: dict) -> Path:
    """Training and validation loss and Dice per epoch for every variant, as seed 004's curves show them."""
    from kerasbrain.evaluation.figures import save_history_curves

    series = {}
    for name, h in histories.items():
        series[f"{name} training"] = [h["loss"], h["dice"]]
        series[f"{name} validation"] = [h["val_loss"], h["val_dice"]]
    return save_history_curves(path, series, ("loss (Dice + BCE)", "Dice"))
