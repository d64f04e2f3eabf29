"""Seed 000's label-efficient chain, end to end, beside a supervised baseline with the same budget.

Stages (each a normal run folder under `out_dir`, resumable like any run):
1. `simclr/`: SimCLR pretraining of the encoder on the training images, labels unused; linear probe.
2. `classifier/`: the classifier family started from the SimCLR encoder; its Grad-CAM makes
3. `pseudomasks/`: pseudo-masks of every tumour image, a BRISC 2025 dataset (scored against the
   drawn masks where the source has them);
4. `multitask/`: the multitask family, SimCLR encoder, trained on the class labels + pseudo-masks,
   on the same train / validation / test images as every other stage;
5. its temperature calibration (`multitask/calibration/`), and
6. `supervised/`: the single-task classifier from random weights, the baseline, with the multitask
   stage's config, epochs, time budget and seed.
Tables (`results.md`, `results.json`): test metrics of the final model, seed 000's per-class table,
supervised vs SSL + pseudo-mask + multi-task, linear probe, pseudo-mask quality, calibration; and
seed 000's figure (original | seed map | pseudo-mask | segmentation output) for a few test images.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from kerasbrain.files import write_json, write_text
from kerasbrain.runs import BEST_MODEL, SPLIT_FILE
from kerasbrain.training.config_multitask import MultiTaskConfig
from kerasbrain.training.config_simclr import SimCLRConfig


def quick_configs(simclr: SimCLRConfig, multitask: MultiTaskConfig):
    """A minute on a CPU with phantoms (the suite's run of the chain): 32 x 32 images, a narrow decoder
    and projection head, one epoch per stage."""
    simclr = replace(simclr, data=replace(simclr.data, image_size=32),
                     model=replace(simclr.model, projection_dims=(32, 16)),
                     training=replace(simclr.training, batch_size=8, epochs=1, warmup_epochs=0))
    multitask = replace(multitask, data=replace(multitask.data, image_size=32),
                        model=replace(multitask.model, decoder_filters=(16, 8, 8, 8, 4)),
                        training=replace(multitask.training, batch_size=8, epochs=1))
    return simclr, multitask


def _split_for(pseudo_root: Path, split: dict) -> dict:
    """The source run's split, in the pseudo-mask dataset's image ids (its file stems)."""
    with open(pseudo_root / "pseudomasks.csv", newline="") as f:
        stem_of = {row["id"]: row["stem"] for row in csv.DictReader(f)}
    return {subset: sorted(stem_of[i] for i in ids if i in stem_of) for subset, ids in split.items()}


def _scores(run: Path) -> dict:
    return json.loads((run / "evaluation" / "summary.json").read_text())


def run_label_efficient(data_dir, out_dir, simclr: SimCLRConfig | None = None,
                        multitask: MultiTaskConfig | None = None, quick: bool = False,
                        time_budget: float | None = None, progress=print, pseudomask=None, self_training=None,
                        drawn_fraction: float = 0.0, drawn_sweep=()) -> dict:
    """The chain above. `pseudomask` (PseudoMaskSettings) makes the first masks; `self_training`
    (experiments/self_training.py) adds rounds; `drawn_fraction` of the train and validation tumour
    images keep their drawn masks (a user's few drawings; 0: none, seed 000's chain); each share in
    `drawn_sweep` then repeats stages 3-4 with that share of drawings (experiments/drawn_sweep.py)."""
    from kerasbrain.data.tumour_images import discover_tumour_images
    from kerasbrain.evaluation.calibration import calibrate_run
    from kerasbrain.evaluation.pseudomask import ATLAS, PseudoMaskSettings, healthy_training_images
    from kerasbrain.experiments.drawn_sweep import evaluate_against_drawn, run_drawn_sweep, sweep_row
    from kerasbrain.experiments.self_training import SelfTraining
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides
    from kerasbrain.training.train_simclr import ENCODER_FILE

    # the seed map that measured best (the healthy atlas; README); seed 000's recipe passes its Grad-CAM
    pseudomask, self_training = pseudomask or PseudoMaskSettings(ATLAS), self_training or SelfTraining()

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    samples = discover_tumour_images(data_dir)
    has_drawn = any(s.mask is not None for s in samples)
    if drawn_sweep and not has_drawn:
        raise ValueError(f"{data_dir}: the drawn-mask sweep needs drawn masks (a BRISC 2025 layout); none found")
    if pseudomask.method == ATLAS:
        healthy_training_images(samples, data_dir)  # refused now, not after two training stages
    simclr, multitask = simclr or SimCLRConfig(), multitask or MultiTaskConfig()
    if quick:
        simclr, multitask = quick_configs(simclr, multitask)
    classifier_family, multitask_family = get_family("classifier"), get_family("multitask")

    progress("== 1/6 SimCLR pretraining (labels unused)")
    pretrained = get_family("simclr").train(data_dir, out_dir / "simclr", simclr, time_budget=time_budget,
                                            progress=progress)
    encoder = str(out_dir / "simclr" / ENCODER_FILE)
    with_ssl = replace(multitask, model=replace(multitask.model, encoder_weights=encoder))

    progress("== 2/6 classifier from the SimCLR encoder")
    classifier_family.train(data_dir, out_dir / "classifier", with_ssl, time_budget=time_budget, progress=progress)
    split = json.loads((out_dir / "classifier" / SPLIT_FILE).read_text())

    stage = masks_and_segmenter(out_dir, out_dir / "classifier", samples, split, with_ssl, pseudomask, self_training,
                                drawn_fraction, time_budget, progress)
    mt_run, pseudo, pseudo_data, result = stage["run"], stage["first_pseudo"], stage["pseudo_data"], stage
    pseudo_summary, rounds, drawn_ids = stage["pseudo_summary"], stage["rounds"], stage["drawn_ids"]
    test_ids = json.loads((mt_run / SPLIT_FILE).read_text())["test"] or None
    multitask_family.evaluate(mt_run, pseudo_data, mt_run / "evaluation", test_ids, progress=progress)
    final = _scores(mt_run)
    drawn, sweep = None, None
    if has_drawn:  # Dice against drawn masks too
        against_drawn = evaluate_against_drawn(mt_run, data_dir, split["test"], progress)
        drawn, sweep = against_drawn.get("masks"), [sweep_row(drawn_fraction, stage, against_drawn)]

    progress("== 5/6 temperature calibration")
    model, size = multitask_family.load_with_size(mt_run / BEST_MODEL, InferenceOverrides())
    calibration = calibrate_run(model, size, mt_run / BEST_MODEL, pseudo_data, progress=progress)

    progress("== 6/6 supervised baseline (random init, same budget and seed)")
    baseline = out_dir / "supervised"
    baseline.mkdir(parents=True, exist_ok=True)
    if not (baseline / SPLIT_FILE).exists():
        shutil.copyfile(out_dir / "classifier" / SPLIT_FILE, baseline / SPLIT_FILE)
    classifier_family.train(data_dir, baseline, multitask, time_budget=time_budget, progress=progress)
    classifier_family.evaluate(baseline, data_dir, baseline / "evaluation", split["test"] or None, progress=progress)
    supervised = _scores(baseline)

    if drawn_sweep:
        sweep += run_drawn_sweep(data_dir, out_dir, samples, split, with_ssl, pseudomask, self_training, drawn_sweep,
                                 time_budget, progress)
    figures = _chain_figures(data_dir, out_dir, pseudo, mt_run, split["test"], pseudomask, progress)
    report = {"final": final, "supervised": supervised["classes"], "probe": pretrained.get("probe"),
              "pseudomasks": pseudo_summary, "multitask_dice_vs_drawn": drawn, "final_run": str(mt_run),
              "self_training": rounds, "drawn_fraction": drawn_fraction, "drawn_images": len(drawn_ids),
              "drawn_sweep": sweep,
              "calibration": {k: calibration[k] for k in ("temperature", "validation", "test")},
              "history": {"multitask": result["history"]}}
    table = results_table(report)
    write_json(out_dir / "results.json", report)
    write_text(out_dir / "results.md", table + "\n")
    return {"table": table, "report": report, "figures": figures, "out_dir": out_dir}


def masks_and_segmenter(out_dir: Path, classifier_run: Path, samples, split: dict, config: MultiTaskConfig,
                        pseudomask, self_training, drawn_fraction: float, time_budget, progress,
                        steps=("3/6", "4/6")) -> dict:
    """Stages 3 and 4 in `out_dir` (`classifier_run`'s classifier makes the seed maps and says which
    images without a class are tumour images; the atlas needs it only for those): the
    first pseudo-masks with `drawn_fraction` of the drawings kept, the multi-task network (`config`,
    SimCLR encoder) on them, its mask threshold against the validation reference, and the
    self-training rounds. Returns the chosen network's run, the masks it trained on, the first
    masks' summary, the rounds, its history and the drawn ids."""
    from kerasbrain.evaluation.pseudomask import write_pseudomask_dataset
    from kerasbrain.experiments.self_training import pick_drawn, self_train, set_round_threshold, validation_reference
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides

    progress(f"== {steps[0]} pseudo-masks ({pseudomask.method}, refinement: {pseudomask.refine})")
    pseudo = out_dir / "pseudomasks"
    drawn_ids = pick_drawn(samples, split, drawn_fraction, config.training.seed)
    if drawn_ids:
        progress(f"{len(drawn_ids)} train / validation images keep their drawn masks ({drawn_fraction:.0%})")
    if not (pseudo / "summary.json").exists():
        model, size = get_family("classifier").load_with_size(classifier_run / BEST_MODEL, InferenceOverrides())
        write_pseudomask_dataset(model, samples, size, pseudo, pseudomask, progress=progress, drawn_ids=drawn_ids)

    progress(f"== {steps[1]} multi-task network on class labels + pseudo-masks")
    mt_run = out_dir / "multitask"
    mt_run.mkdir(parents=True, exist_ok=True)
    if not (mt_run / SPLIT_FILE).exists():
        write_json(mt_run / SPLIT_FILE, _split_for(pseudo, split), indent=1)
    family = get_family("multitask")
    history = family.train(pseudo / "brisc2025", mt_run, config, time_budget=time_budget, progress=progress)["history"]
    reference = validation_reference(samples, split, drawn_ids, pseudo, config.data.image_size)
    set_round_threshold(mt_run, reference, progress)
    stage = {"run": mt_run, "first_pseudo": pseudo, "pseudo_data": pseudo / "brisc2025", "history": history,
             "pseudo_summary": json.loads((pseudo / "summary.json").read_text()), "rounds": None,
             "drawn_ids": drawn_ids}
    if self_training.rounds:
        chosen = self_train(out_dir, samples, split, config, mt_run, pseudo, self_training, drawn_ids, time_budget,
                            progress, reference)
        stage["rounds"] = chosen["rounds"]
        if chosen["run"] != mt_run:
            stage.update(run=chosen["run"], pseudo_data=chosen["pseudo"] / "brisc2025", history=chosen["history"])
    return stage


def _chain_figures(data_dir: Path, out_dir: Path, pseudo: Path, mt_run: Path, test_ids, settings, progress,
                   per_class: int = 1) -> list:
    """Seed 000's four panels for the first test image(s) of each tumour class: original | the run's seed
    map (`settings`: a class activation map or the healthy atlas) | first pseudo-mask | the final
    network's output, with the drawn mask outlined where the dataset has one."""
    from kerasbrain.data.classes import CLASSES, NO_TUMOR
    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples
    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.evaluation.figures import save_pseudomask_figure
    from kerasbrain.evaluation.healthy_atlas import plane_of
    from kerasbrain.evaluation.pseudomask import ATLAS, SEED_MAP_TITLES, fit_atlas, seed_masks
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides

    with open(pseudo / "pseudomasks.csv", newline="") as f:
        rows = {row["id"]: row for row in csv.DictReader(f)}
    chosen, seen = [], {}
    for i in test_ids:
        row = rows.get(i)
        if row and row["class"] != CLASSES[NO_TUMOR] and seen.get(row["class"], 0) < per_class:
            seen[row["class"]] = seen.get(row["class"], 0) + 1
            chosen.append(row["stem"])
    if not chosen:
        return []
    samples = {s.id: s for s in discover_tumour_images(pseudo / "brisc2025")}
    picked = [samples[stem] for stem in chosen]
    rows_by_stem = {row["stem"]: row for row in rows.values()}
    classifier, size = get_family("classifier").load_with_size(out_dir / "classifier" / BEST_MODEL,
                                                               InferenceOverrides())
    model = get_family("multitask").load_with_size(mt_run / BEST_MODEL, InferenceOverrides())[0]
    images, labels, masks, _ = load_samples(picked, size)
    originals = {s.id: s for s in discover_tumour_images(data_dir)}
    source = [originals[rows_by_stem[s.id]["id"]] for s in picked]
    _, _, truth, has_truth = load_samples(source, size)
    atlas = fit_atlas(list(originals.values()), size, progress) if settings.method == ATLAS else None
    heat = seed_masks(classifier, images, labels, settings, atlas=atlas,
                      planes=[plane_of(s.image.name) for s in source])[1]
    output = predict_images(model, images)["mask"]
    paths = [save_pseudomask_figure(out_dir / "figures" / f"{s.id}.png", images[i], heat[i], masks[i, ..., 0],
                                    f"{CLASSES[labels[i]]}: {s.id}", output=output[i],
                                    truth=truth[i, ..., 0] if has_truth[i] else None,
                                    map_title=SEED_MAP_TITLES.get(settings.method, settings.method))
             for i, s in enumerate(picked)]
    progress(f"figures: {out_dir / 'figures'}")
    return paths


def results_table(report: dict) -> str:
    from kerasbrain.evaluation.calibration import calibration_table
    from kerasbrain.evaluation.classification import class_table
    from kerasbrain.experiments.drawn_sweep import sweep_table
    from kerasbrain.training.train_simclr import probe_table

    final, supervised = report["final"], report["supervised"]
    c = final["classes"]
    lines = ["## Test set (SSL + pseudo-mask + multi-task)", "",
             f"- Accuracy: {c['accuracy']:.4f}", f"- Macro F1: {c['macro_f1']:.4f}",
             f"- ROC-AUC (macro): {c['macro_roc_auc']:.4f}"]
    if "masks" in final:
        lines.append(f"- Segmentation Dice (vs pseudo-mask): {final['masks']['dice']:.4f}")
    if report.get("multitask_dice_vs_drawn"):
        lines.append(f"- Segmentation Dice (vs drawn masks): {report['multitask_dice_vs_drawn']['dice']:.4f}")
    lines += ["", class_table(c), "", "## Baseline vs multi-task", "", "| Model | Accuracy | Macro F1 |",
              "|---|---:|---:|",
              f"| ResNet supervised (single-task, random init) | {supervised['accuracy']:.4f} | "
              f"{supervised['macro_f1']:.4f} |",
              f"| SSL + pseudo-mask + multi-task | {c['accuracy']:.4f} | {c['macro_f1']:.4f} |"]
    if report.get("probe"):
        lines += ["", "## SimCLR linear probe", "", probe_table(report["probe"])]
    drawn = report["pseudomasks"].get("vs_drawn")
    lines += ["", "## Pseudo-masks", "",
              f"{report['pseudomasks']['tumour_images']} tumour images of {report['pseudomasks']['images']}; "
              + (f"Dice against drawn masks: pooled {drawn['pooled_dice']:.4f}, mean {drawn['mean_dice']:.4f} "
                 f"(n = {drawn['n']})" if drawn else "no drawn masks to compare with")]
    seeds = report["pseudomasks"].get("seeds_vs_drawn")
    if seeds:
        lines[-1] += (f"; the seeds before {report['pseudomasks']['settings']['refine']} refinement: pooled "
                      f"{seeds['pooled_dice']:.4f}, mean {seeds['mean_dice']:.4f}")
    if report.get("self_training"):
        lines += ["", "## Self-training rounds", "",
                  "| round | pseudo-masks vs drawn (pooled Dice) | network vs validation reference | masks vs "
                  "last round (Dice) | decision |", "|---|---|---|---|---|"]
        for row in report["self_training"]:
            pseudo = row.get("pseudo") or {}
            validation, agreement = row["validation_dice"], row["agreement_with_previous"]
            if validation is not None:
                validation = f"{validation:.4f} ({row['validation_against']} masks)"
            lines.append(f"| {row['round']}{' (chosen)' if row.get('chosen') else ''} | "
                         f"{pseudo.get('pooled_dice', float('nan')):.4f} | "
                         + ("-" if validation is None else validation) + " | "
                         + ("-" if agreement is None else f"{agreement:.4f}") + f" | {row.get('decision', '')} |")
    if report.get("drawn_sweep") and len(report["drawn_sweep"]) > 1:
        lines += ["", "## What a few drawings buy", "", sweep_table(report["drawn_sweep"])]
    lines += ["", "## Calibration of the multi-task model", "", calibration_table(report["calibration"])]
    return "\n".join(lines)
