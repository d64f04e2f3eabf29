"""One command per seed: its recipe, its split, its table beside its published numbers, its figures.

    kerasbrain reproduce seed00N --data DIR [--out DIR] [--quick]

Each seed is one registered `SeedRecipe`: the shipped configs it runs (`kerasbrain/configs/`), the
dataset it expects, and a function that trains, scores the seed's split and writes `reproduce.md`
(our table, then the seed's published numbers after ours cell by cell, `experiments/published.py`)
and the seed's figures. Seeds 000 and 004 run their experiments (`label_efficient`, `lgg_compare`);
seeds 001-003 train their family with the seed's config and score its test (or validation) split.
`quick` shrinks every run to minutes on phantoms (the suite's check that the chain runs); its
numbers are not comparable with the seed's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np

from kerasbrain.experiments.published import beside_published
from kerasbrain.files import write_text

#: SHAP and LIME model evaluations per picture in a quick run (the full run: their default, 300)
QUICK_SAMPLES = 40


@dataclasses.dataclass(frozen=True)
class SeedRecipe:
    seed: str
    title: str  # what the seed's main table is
    dataset: str  # what --data must hold
    configs: tuple[str, ...]  # the shipped configs it runs
    run: Callable[..., dict]  # (data, out, quick, progress) -> {"table": Markdown, "files": [paths]}


RECIPES: dict[str, SeedRecipe] = {}


def recipe(seed: str, title: str, dataset: str, configs: tuple[str, ...]):
    """Register a seed's reproduction (one function per seed)."""
    def register(fn):
        RECIPES[seed] = SeedRecipe(seed, title, dataset, configs, fn)
        return fn
    return register


def reproduce(seed: str, data, out, quick: bool = False, progress=print) -> dict:
    """Run `seed`'s recipe on `data` into `out`; writes out/reproduce.md (table and files)."""
    if seed not in RECIPES:
        raise ValueError(f"unknown seed {seed!r}; choose from {', '.join(sorted(RECIPES))}")
    r = RECIPES[seed]
    out = Path(out)
    progress(f"== reproducing {seed}: {r.title} (configs {', '.join(r.configs)}{'; quick, phantom-sized' if quick else ''})")
    result = r.run(Path(data), out, quick, progress)
    note = ("Quick run: shrunk to minutes on a CPU; not comparable with the seed's numbers.\n\n" if quick else "")
    files = "\n".join(f"- {p}" for p in result["files"])
    write_text(out / "reproduce.md", f"# {seed}: {r.title}\n\n{note}{result['table']}\n\n## Files\n\n{files}\n")
    return {**result, "report": out / "reproduce.md"}


# --- seed 000: SimCLR -> Grad-CAM pseudo-masks -> multi-task -> calibration -> robustness ----------

@recipe("seed000", "label-efficient chain (SimCLR, Grad-CAM pseudo-masks, multi-task), calibration and robustness",
        "Kaggle 4-class folders or BRISC 2025", ("seed000_simclr", "seed000_multitask"))
def _seed000(data, out, quick, progress):
    from kerasbrain.evaluation.pseudomask import PseudoMaskSettings
    from kerasbrain.evaluation.robustness import evaluate_robustness
    from kerasbrain.experiments.label_efficient import run_label_efficient
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides
    from kerasbrain.runs import BEST_MODEL

    multitask = get_family("multitask")
    result = run_label_efficient(data, out, get_family("simclr").load_config("seed000_simclr"),
                                 multitask.load_config("seed000_multitask"), quick, progress=progress,
                                 pseudomask=PseudoMaskSettings("gradcam"))  # the seed's chain: Grad-CAM (of P4)
    progress("== robustness of the final model (seed 000: noise and motion artefacts)")
    model, size = multitask.load_with_size(out / "multitask" / BEST_MODEL, InferenceOverrides())
    robustness = evaluate_robustness(model, size, out / "multitask" / BEST_MODEL, data, out / "robustness",
                                     max_images=24 if quick else 0, progress=progress)
    final = result["report"]["final"]
    c = final["classes"]
    rows = [{"row": "SSL + pseudo-mask + multi-task", "accuracy": c["accuracy"], "macro_f1": c["macro_f1"],
             "macro_roc_auc": c["macro_roc_auc"], "dice_vs_pseudo_mask": final.get("masks", {}).get("dice")}]
    classes = [{"row": name, **{k: v[k] for k in ("precision", "recall", "f1")}}
               for name, v in c["per_class"].items()]
    baseline = [{"row": "ResNet supervised (single-task)", "accuracy": result["report"]["supervised"]["accuracy"],
                 "macro_f1": result["report"]["supervised"]["macro_f1"]}]
    table = "\n\n".join([
        "## Key results (test set)", beside_published("seed000", rows, "row", ("accuracy", "macro_f1",
                                                                              "macro_roc_auc", "dice_vs_pseudo_mask")),
        "## Per class", beside_published("seed000", classes, "row", ("precision", "recall", "f1")),
        "## Baseline", beside_published("seed000", baseline, "row", ("accuracy", "macro_f1")),
        "## Robustness", robustness["table"], "## The chain's own tables", result["table"]])
    reliability = Path(result["report"]["final_run"]) / "calibration" / "reliability.png"
    return {"table": table, "files": [out / "results.md", *result["figures"], *robustness["files"],
                                      *([reliability] if reliability.exists() else [])]}


# --- seed 001: multi-task ResNet, class report, Dice / IoU, Grad-CAM, SHAP, LIME ---------------------

@recipe("seed001", "multi-task ResNet (4 classes + U-Net mask): classification report, Dice / IoU, explanations",
        "BRISC 2025", ("seed001_multitask",))
def _seed001(data, out, quick, progress):
    from kerasbrain.data.classes import CLASSES, NO_TUMOR
    from kerasbrain.data.tumour_images import discover_tumour_images
    from kerasbrain.evaluation.classification import class_table
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides
    from kerasbrain.runs import SPLIT_FILE

    family = get_family("multitask")
    config = family.load_config("seed001_multitask")
    if quick:
        from kerasbrain.experiments.label_efficient import quick_configs

        config = quick_configs(get_family("simclr").load_config(None), config)[1]
    run = out / "run"
    family.train(data, run, config, progress=progress)
    test = json.loads((run / SPLIT_FILE).read_text())["test"] or None
    evaluation = family.evaluate(run, data, out / "evaluation", test, progress=progress)
    progress("== explanations: Grad-CAM, SHAP and LIME of one test image per tumour class")
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    figures = []
    samples = {s.id: s for s in discover_tumour_images(data)}
    shown = set()
    loaded = family.load_with_size(run, InferenceOverrides())  # once for all nine pictures
    for sample_id in test or sorted(samples):
        s = samples.get(sample_id)
        if s is None or s.label in shown or s.label == NO_TUMOR:
            continue
        shown.add(s.label)
        for method in ("gradcam", "shap", "lime"):
            path = out / "explanations" / f"{CLASSES[s.label]}_{method}.png"
            figures.append(family.explain(run, s.image, path, method, loaded=loaded,
                                          samples=QUICK_SAMPLES if quick and method != "gradcam" else None)[-1])
    c = summary["classes"]
    lines = ["## Classification (test set)", "", class_table(c), "", "## Segmentation (test set)", "",
             "| Dice | IoU |", "|---|---|"]
    masks = summary.get("masks") or {}
    lines.append(f"| {masks.get('dice', float('nan')):.4f} | {masks.get('iou', float('nan')):.4f} |")
    lines += ["", "Seed 001 publishes no numbers to set beside these; its figures (confusion matrix, ROC and PR "
                  "curves, Dice/IoU, overlays, Grad-CAM / SHAP / LIME) are the files below."]
    return {"table": "\n".join(lines), "files": [*evaluation["files"], *figures]}


# --- seed 002: U-Net from scratch on LGG, pooled pixel scores ----------------------------------------

@recipe("seed002", "2-D U-Net from scratch on LGG kaggle_3m: pixel IoU, recall, precision, F1 on test patients",
        "LGG kaggle_3m", ("seed002_unet2d",))
def _seed002(data, out, quick, progress):
    from kerasbrain.evaluation.figures import save_history_curves, save_slice_figure
    from kerasbrain.evaluation.slices import evaluate_slices
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.inference.predict_slices import predict_slice_probabilities
    from kerasbrain.data.slices import load_slices
    from kerasbrain.training.config2d import Stage, load_slice_config
    from kerasbrain.training.train_unet2d import split_slices, train_unet2d

    config = load_slice_config("seed002_unet2d")
    if quick:
        config = dataclasses.replace(config, stages=(Stage(2, 1e-3),),
                                     training=dataclasses.replace(config.training, batch_size=4, max_slices=24))
    result = train_unet2d(data, out / "run", config, verbose=2 if quick else "auto", progress=progress)
    subsets, _ = split_slices(data, config, out / "run")
    test = subsets["test"] or subsets["validation"]
    model = load_model(result["best"])
    scores = evaluate_slices(model, test, out / "evaluation", config.data.enhance, progress=progress)
    pixels = scores["summary"]["pixels"]
    row = {"scores": "pixels", **{k: pixels[k] for k in ("iou", "recall", "precision", "dice")}}
    table = "\n\n".join(["## Test set, all pixels pooled", beside_published(
        "seed002", [row], "scores", ("iou", "recall", "precision", "dice"),
        {"iou": "IoU", "recall": "Recall", "precision": "Precision", "dice": "F1 (Dice)"}),
        "## Pixel-wise classification report", "```\n" + scores["report"] + "\n```"])
    h = result["history"]
    files = [save_history_curves(out / "training_curves.png", {"training": [h["loss"], h["dice"]],
                                                                "validation": [h["val_loss"], h["val_dice"]]},
                                 ("loss (Dice + BCE)", "Dice"))]
    images, masks = load_slices(test, config.data.enhance)
    largest = np.argsort(masks[..., 0].reshape(len(test), -1).sum(1))[::-1][:3]  # seed 002 shows tumour slices
    probabilities = predict_slice_probabilities(model, images[largest])
    for k, i in enumerate(largest):
        files.append(save_slice_figure(out / f"heatmap_{k + 1}.png", images[i], probabilities[k], masks[i, ..., 0]))
    return {"table": table, "files": [*files, out / "evaluation" / "summary.json"]}


# --- seed 003: 3-D U-Net with soft Dice on MSD Task01 ------------------------------------------------

@recipe("seed003", "3-D U-Net with soft Dice on MSD Task01 / BraTS: mean soft Dice and per-label rates (validation)",
        "MSD Task01_BrainTumour or a BraTS folder", ("seed003_unet3d",))
def _seed003(data, out, quick, progress):
    from kerasbrain.evaluation.figures import save_history_curves
    from kerasbrain.families import get_family
    from kerasbrain.runs import subset_ids

    family = get_family("unet3d")
    quick_changes = ["training.patch_size=[32, 32, 16]", "training.batch_size=2", "training.epochs=2",
                     "training.steps_per_epoch=2", "training.validation_patches=2", "model.base_filters=4",
                     "inference.window=[32, 32, 16]"]
    config = family.load_config("seed003_unet3d", quick_changes if quick else ())
    result = family.train(data, out / "run", config, progress=progress)
    validation = subset_ids(out / "run", "validation")
    evaluation = family.evaluate(result["best"], data, out / "evaluation", validation, progress=progress)
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    mean = lambda key: summary[key]["mean"]  # noqa: E731
    h = result["history"]
    best = int(np.argmin(h["val_loss"]))  # best.keras's epoch, as the seed reports its best
    at_best = lambda key: float(h[key][best])  # noqa: E731
    soft = [{"row": "training patches", "soft_dice": at_best("soft_dice"), "dice_loss": at_best("loss")},
            {"row": "validation patches", "soft_dice": at_best("val_soft_dice"), "dice_loss": at_best("val_loss")},
            {"row": "validation cases", "soft_dice": mean("soft_dice_mean")}]
    labels = [{"row": name, "sensitivity": mean(f"sens_{name}"), "specificity": mean(f"spec_{name}")}
              for name in ("edema", "necrotic_core", "enhancing")]
    regions = ["| region | Dice | HD95 (mm) |", "|---|---|---|"] + [
        f"| {r} | {mean(f'dice_{r}'):.4f} | {mean(f'hd95_{r}'):.1f} |" for r in ("WT", "TC", "ET")]
    table = "\n\n".join(["## Dice coefficient and loss (seed 003's label channels)",
                         beside_published("seed003", soft, "row", ("soft_dice", "dice_loss")),
                         "## Class-wise performance", beside_published("seed003", labels, "row",
                                                                       ("sensitivity", "specificity")),
                         "## BraTS regions (ours only)", "\n".join(regions)])
    curves = save_history_curves(out / "training_curves.png",
                                 {"training": [h["loss"], h["soft_dice"]],
                                  "validation": [h["val_loss"], h["val_soft_dice"]]},
                                 ("loss (soft Dice)", "Dice coefficient"))
    return {"table": table, "files": [curves, *evaluation["files"]]}


# --- seed 004: the four-way LGG table on ImageNet encoders -------------------------------------------

@recipe("seed004", "{raw, median + CLAHE} x {ResNet50, EfficientNet-B0} U-Nets on LGG, two-stage fine-tuning",
        "LGG kaggle_3m", ("seed004_resnet50",))
def _seed004(data, out, quick, progress):
    from kerasbrain.experiments.lgg_compare import run_lgg_compare

    result = run_lgg_compare(data, out, quick=quick, progress=progress,
                             encoders=("resnet18",) if quick else ("resnet50", "efficientnet_b0"))
    return {"table": result["table"] + "\n\n## Beside seed 004's published table\n\n" + result["comparison"],
            "files": [out / "results.md", out / "results.csv", result["curves"]]}
