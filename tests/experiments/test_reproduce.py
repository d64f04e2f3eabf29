"""`kerasbrain reproduce seed00N --quick` on phantoms: the seed's table is our evaluation's numbers with
the seed's published ones after them, cell by cell, and the seed's figures are written. Seeds 000
and 004 run through their experiment tests (test_cli_label_efficient.py, test_cli_slices.py)."""

import csv
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_every_seed_has_a_recipe_and_its_shipped_configs():
    from kerasbrain.config import shipped_configs
    from kerasbrain.experiments.reproduce import RECIPES

    assert sorted(RECIPES) == ["seed000", "seed001", "seed002", "seed003", "seed004"]
    for recipe in RECIPES.values():
        assert set(recipe.configs) <= set(shipped_configs()), recipe.seed
    result = run("reproduce", "seed009", "--data", ".")
    assert result.exit_code == 2 and "seed009" in result.output


@once  # 3-D training and prediction: ~10 s on TensorFlow, ~19 s under JAX on this CPU
def test_seed003_soft_dice_and_label_rates_beside_the_seeds(msd_dir, tmp_path):
    out = tmp_path / "r3"
    result = run("reproduce", "seed003", "--data", msd_dir, "--out", out, "--quick")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "evaluation" / "cases.csv").open()))
    split = json.loads((out / "run" / "split.json").read_text())
    assert sorted(r["case_id"] for r in rows) == sorted(split["validation"])  # the seed scores its validation cases
    text = (out / "reproduce.md").read_text()
    soft = np.mean([float(r["soft_dice_mean"]) for r in rows])
    assert f"| validation cases | {soft:.4f} / - | - / - |" in text
    # the seed's own quantity: soft Dice over its label channels on validation patches at the best epoch
    history = list(csv.DictReader((out / "run" / "history.csv").open()))
    best = min(history, key=lambda r: float(r["val_loss"]))
    assert (f"| validation patches | {float(best['val_soft_dice']):.4f} / 0.7273 | "
            f"{float(best['val_loss']):.4f} / 0.2629 |") in text
    assert "val_dice_ED" in history[0] and json.loads((out / "run" / "config.json").read_text())["model"][
        "targets"] == "labels"
    edema = (np.mean([float(r["sens_edema"]) for r in rows]), np.mean([float(r["spec_edema"]) for r in rows]))
    assert f"| edema | {edema[0]:.4f} / 0.8272 | {edema[1]:.4f} / 0.9767 |" in text
    assert "Quick run" in text and cv2.imread(str(out / "training_curves.png")) is not None


@once
def test_seed002_pooled_pixel_scores_beside_the_seeds(tmp_path):
    assert run("synth", "lgg", "--patients", 5, "--slices", 4, "--image-size", 64, "--out", tmp_path / "lgg",
               "--seed", 4).exit_code == 0
    out = tmp_path / "r2"
    result = run("reproduce", "seed002", "--data", tmp_path / "lgg", "--out", out, "--quick")
    assert result.exit_code == 0, result.output
    pixels = json.loads((out / "evaluation" / "summary.json").read_text())["pixels"]
    expected = (f"| pixels | {pixels['iou']:.4f} / 0.7257 | {pixels['recall']:.4f} / 0.8398 | "
                f"{pixels['precision']:.4f} / 0.8733 | {pixels['dice']:.4f} / 0.8562 |")
    assert expected in (out / "reproduce.md").read_text()
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["model"]["encoder"] == "none" and config["augmentation"]["rotation_degrees"] == 35.0  # seed 002's
    for k in (1, 2, 3):  # seed 002's figures: original | truth | heatmap on test slices with tumour
        assert cv2.imread(str(out / f"heatmap_{k}.png")).shape[1] == 1200
    assert cv2.imread(str(out / "training_curves.png")) is not None


@once
def test_seed001_class_report_masks_and_explanations(tmp_path):
    assert run("synth", "brisc", "--out", tmp_path / "data", "--per-class", 4, "--seed", 6).exit_code == 0
    out = tmp_path / "r1"
    result = run("reproduce", "seed001", "--data", tmp_path / "data", "--out", out, "--quick")
    assert result.exit_code == 0, result.output
    from kerasbrain.evaluation.classification import class_table

    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    text = (out / "reproduce.md").read_text()
    assert class_table(summary["classes"]) in text
    assert f"| {summary['masks']['dice']:.4f} | {summary['masks']['iou']:.4f} |" in text
    assert json.loads((out / "run" / "config.json").read_text())["training"]["schedule"] == "alternate"
    pictures = sorted(p.name for p in (out / "explanations").glob("*.png"))
    assert pictures == sorted(f"{c}_{m}.png" for c in ("glioma", "meningioma", "pituitary")
                              for m in ("gradcam", "lime", "shap"))
    assert "publishes no numbers" in text
