"""End-to-end: seed 000's label-efficient chain and its verbs from the command line on BRISC phantoms."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once_on

# The chain's stages (SimCLR, pseudo-masks, multi-task, calibration, export) are tested on both
# backends in tests/training, tests/evaluation and tests/export; the chain itself (about 2 minutes)
# runs once, on JAX, where it evens out the two backends' runs (TensorFlow carries most `once` tests).
pytestmark = once_on("jax")

TINY = """
[data]
image_size = 32
[model]
decoder_filters = [16, 8, 8, 8, 4]
[training]
batch_size = 8
epochs = 1
"""
TINY_SIMCLR = """
[data]
image_size = 32
[model]
projection_dims = [32, 16]
[training]
batch_size = 8
epochs = 1
warmup_epochs = 0
"""


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("label_efficient")
    assert run("synth", "brisc", "--out", root / "data", "--per-class", 4, "--seed", 8).exit_code == 0
    # seed 000's own configs, shrunk by --quick to the sizes above (label_efficient.quick_configs)
    result = run("reproduce", "seed000", "--data", root / "data", "--out", root / "run", "--quick")
    assert result.exit_code == 0, result.output
    return root, result.output


def test_quick_is_the_tiny_chain():
    import tomllib

    from kerasbrain.experiments.label_efficient import quick_configs
    from kerasbrain.families import get_family

    simclr, multitask = quick_configs(get_family("simclr").load_config("seed000_simclr"),
                                      get_family("multitask").load_config("seed000_multitask"))
    tiny, tiny_simclr = tomllib.loads(TINY), tomllib.loads(TINY_SIMCLR)
    assert multitask.data.image_size == tiny["data"]["image_size"] == simclr.data.image_size
    assert list(multitask.model.decoder_filters) == tiny["model"]["decoder_filters"]
    assert list(simclr.model.projection_dims) == tiny_simclr["model"]["projection_dims"]
    assert multitask.training.epochs == simclr.training.epochs == 1
    assert multitask.model.encoder == simclr.model.encoder == "resnet18"  # the seed's encoder


def test_the_chain_writes_seed_000s_tables_from_every_stage(chain):
    root, output = chain
    run_dir = root / "run"
    for section in ("## Test set (SSL + pseudo-mask + multi-task)", "| Class | Precision | Recall | F1-score |",
                    "| ResNet supervised (single-task, random init) |", "| SSL + pseudo-mask + multi-task |",
                    "## SimCLR linear probe", "Dice against drawn masks", "Temperature T ="):
        assert section in output
    report = json.loads((run_dir / "results.json").read_text())
    assert report["final"]["classes"]["n"] == 4 and report["supervised"]["n"] == 4  # the same test images
    assert report["pseudomasks"]["vs_drawn"]["n"] == 12  # every tumour image (3 classes x 4) has a drawn mask
    assert report["multitask_dice_vs_drawn"]["n"] == 3
    assert json.loads((run_dir / "simclr" / "run.json").read_text())["family"] == "simclr"
    classifier = json.loads((run_dir / "classifier" / "config.json").read_text())
    assert classifier["model"]["encoder_weights"].endswith("encoder.keras")
    assert json.loads((run_dir / "supervised" / "config.json").read_text())["model"]["encoder_weights"] == ""
    for name in ("classifier", "multitask", "supervised"):
        split = json.loads((run_dir / name / "split.json").read_text())
        assert len(split["test"]) == 4
    assert len(list((run_dir / "figures").glob("*.png"))) == 3  # one per tumour class
    assert (run_dir / "multitask" / "calibrated.keras").exists()
    # no drawings: the segmenter's threshold was chosen against the validation images' pseudo-masks
    threshold = json.loads((run_dir / "multitask" / "mask_threshold.json").read_text())
    assert threshold["against"] == "pseudo" and threshold["images"] == len(
        [i for i in json.loads((run_dir / "classifier" / "split.json").read_text())["validation"]
         if "_no_" not in i])  # the validation tumour images
    # reproduce: seed 000's published numbers after ours, cell by cell, and its robustness analysis
    c = report["final"]["classes"]
    text = (run_dir / "reproduce.md").read_text()
    assert f"| SSL + pseudo-mask + multi-task | {c['accuracy']:.4f} / 0.8909 | {c['macro_f1']:.4f} / 0.8837 |" in text
    g = c["per_class"]["meningioma"]
    assert f"| meningioma | {g['precision']:.4f} / 0.8715 | {g['recall']:.4f} / 0.7092 | {g['f1']:.4f} / 0.7820 |" in text
    s = report["supervised"]
    assert f"| ResNet supervised (single-task) | {s['accuracy']:.4f} / 0.8172 | {s['macro_f1']:.4f} / 0.8021 |" in text
    robustness = json.loads((run_dir / "robustness" / "robustness.json").read_text())
    assert {r["corruption"] for r in robustness} >= {"gaussian_noise", "motion"} and "## Robustness" in text


def test_the_calibrated_model_exports_with_its_temperature(chain, tmp_path):
    root, _ = chain
    report = json.loads((root / "run" / "multitask" / "calibration" / "calibration.json").read_text())
    result = run("export", "--model", root / "run" / "multitask" / "calibrated.keras", "--name", "calibrated",
                 "--root", tmp_path, "--no-warmup", "--backend", "jax")  # this process (the module runs on JAX)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "calibrated" / "1" / "assets.extra" / "kerasbrain.json").read_text())
    assert manifest["calibration_temperature"] == pytest.approx(report["temperature"])
    assert manifest["family"] == "multitask"
    card = (tmp_path / "calibrated" / "1" / "assets.extra" / "MODEL_CARD.md").read_text()
    assert f"temperature {report['temperature']:.4f} folded into the class layer" in card
    assert "Temperature T =" in card and "## Evaluation (test images)" in card and "`training.epochs` = 1" in card


def test_robustness_and_the_new_explanations(chain, tmp_path):
    import cv2

    root, _ = chain
    model = root / "run" / "classifier"
    result = run("robustness", "--model", model, "--data", root / "data", "--out", tmp_path / "rob",
                 "--corruption", "motion", "--corruption", "rician_noise", "--max-images", 3)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "rob" / "robustness.json").read_text())
    assert [(r["corruption"], r["severity"]) for r in rows][:2] == [("motion", 0), ("motion", 1)] and len(rows) == 12
    clean = [r for r in rows if r["severity"] == 0]
    assert clean[0]["accuracy"] == clean[1]["accuracy"]  # severity 0 is the same clean images
    assert (tmp_path / "rob" / "degradation.png").stat().st_size > 10_000
    image = sorted((root / "data" / "brisc2025" / "classification_task" / "test" / "glioma").glob("*.jpg"))[0]
    for method in ("occlusion", "integrated-gradients"):
        result = run("explain", "--model", model, "--input", image, "--method", method, "--out", tmp_path / f"{method}.png")
        assert result.exit_code == 0, result.output
        assert f"{method} explains " in result.output
        # a classifier has no mask panel: original | heat map | probabilities, 1200 x 440 pixels (the
        # maps themselves, pixel for pixel: test_cli_multitask.py::test_explain_draws_the_map_the_library_computes)
        assert cv2.imread(str(tmp_path / f"{method}.png")).shape == (440, 1200, 3)


def test_pretrain_is_its_own_verb_and_bad_inputs_are_one_line(chain, tmp_path):
    root, _ = chain
    assert "simclr" in run("pretrain", "--help").output and "simclr" not in run("train", "--help").output
    assert "--encoder-weights" in run("train", "classifier", "--help").output
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    assert run("synth", "classes", "--out", tmp_path / "kaggle", "--per-class", 1).exit_code == 0  # no masks
    for args in (("pseudomask", "--model", bad, "--data", root / "data", "--out", tmp_path / "pm"),
                 ("pseudomask", "--model", root / "run" / "classifier", "--data", root / "data", "--out",
                  root / "run" / "pseudomasks"),
                 ("calibrate", "--model", root / "run" / "simclr", "--data", root / "data"),
                 ("train", "classifier", "--data", root / "data", "--out", tmp_path / "r", "--encoder-weights",
                  tmp_path / "missing.keras"),
                 ("experiment", "label-efficient", "--data", tmp_path / "kaggle", "--out", tmp_path / "le",
                  "--drawn-sweep", "0.1"),  # a sweep of drawings on data without any
                 # one healthy training image: no atlas, said before anything is trained or written
                 ("experiment", "label-efficient", "--data", tmp_path / "kaggle", "--out", tmp_path / "le",
                  "--cam", "atlas"),
                 ("pseudomask", "--model", root / "run" / "classifier", "--data", tmp_path / "kaggle", "--out",
                  tmp_path / "pm", "--method", "atlas")):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output
        if "atlas" in args:
            assert f"{tmp_path / 'kaggle'}: the healthy atlas needs at least 2 'no tumour'" in result.output
    assert not (tmp_path / "pm").exists() and not (tmp_path / "r").exists() and not (tmp_path / "le").exists()
    assert np.isfinite(float((root / "run" / "simclr" / "history.csv").read_text().splitlines()[1].split(",")[1]))


def test_the_pseudomask_verb_takes_every_class_activation_option(chain, tmp_path):
    root, _ = chain
    result = run("pseudomask", "--model", root / "run" / "classifier", "--data", root / "data", "--out",
                 tmp_path / "pm", "--method", "layercam", "--layer", "P3+P4+P5", "--contrast", "--refine", "grabcut",
                 "--figures", 1)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "pm" / "summary.json").read_text())
    assert summary["settings"] == {"method": "layercam", "layer": "P3+P4+P5", "contrast": True, "threshold": "otsu",
                                   "percentile": 90.0, "components": 1, "min_heat": 0.2, "refine": "grabcut"}
    assert summary["seeds_vs_drawn"]["n"] == summary["vs_drawn"]["n"] == 12  # each stage scored on its own
    assert "seeds before refinement Dice against drawn masks" in result.output
    report = json.loads((root / "run" / "pseudomasks" / "summary.json").read_text())
    assert report["settings"]["method"] == "gradcam"  # reproduce seed000 keeps the seed's own seed map
