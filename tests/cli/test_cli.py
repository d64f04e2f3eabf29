"""End-to-end: the `kerasbrain` commands on phantom data, as a user runs them."""

import csv
import json
import re
import shutil
import subprocess
import sys

import keras
import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import TINY_UNET3D_TOML, once

TINY_CONFIG = TINY_UNET3D_TOML + """overlap = 0.25
batch_size = 2
[data]
validation_fraction = 0.34
"""


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "Task01_BrainTumour"
    result = run("synth", "msd", "--out", data, "--cases", 3, "--test-cases", 1, "--shape", 40, 36, 30, "--seed", 3)
    assert result.exit_code == 0, result.output
    config = root / "tiny.toml"
    config.write_text(TINY_CONFIG)
    result = run("train", "unet3d", "--data", data, "--config", config, "--out", root / "run", "--epochs", 1,
                 "--steps-per-epoch", 2)
    assert result.exit_code == 0, result.output
    (root / "train_output.txt").write_text(result.output)
    return root, data, root / "run"


def test_train_prints_where_outputs_are(trained):
    root, _, run_dir = trained
    printed = (root / "train_output.txt").read_text()
    for name in ("best.keras", "last.keras", "logs"):  # each output is named, and is where the line says
        (line,) = [line for line in printed.splitlines() if line.rstrip().endswith(str(run_dir / name))]
        assert (run_dir / name).exists(), line
    assert json.loads((run_dir / "config.json").read_text())["model"]["depth"] == 2
    # JAX on CPUs is told before the first epoch that TensorFlow trains 3-D models faster there
    assert ("KERAS_BACKEND=tensorflow trains faster here" in printed) == (keras.backend.backend() == "jax")
    # Not a terminal: Keras's one line per epoch (2 steps here), no carriage-return redraws.
    assert "\r" not in printed and re.search(r"^2/2 - \d+s - .* - loss: .* - val_loss: ", printed, re.M), printed


def test_train_chooses_its_post_processing_as_evaluate_would_on_the_same_cases(trained):
    from kerasbrain.evaluation.postprocess_choice import RECORD, choice_cases

    root, data, run_dir = trained
    record = json.loads((run_dir / RECORD).read_text())
    split = json.loads((run_dir / "split.json").read_text())
    ids = choice_cases(split, "validation+train", 8)  # the defaults: every case of this small dataset
    assert [r["case_id"] for r in record["cases"]] == ids["validation"] + ids["train"]
    assert sorted(ids["validation"] + ids["train"]) == ["BRATS_001", "BRATS_002", "BRATS_003"]
    inference = json.loads((run_dir / "config.json").read_text())["inference"]
    choice = (record["min_component_ml"], record["min_enhancing_ml"])
    assert (inference["min_component_ml"], inference["min_enhancing_ml"]) == choice
    # evaluate, an independent path, scores the same cases lesion-wise with the run's settings in use
    result = run("evaluate", "--model", run_dir, "--data", data, "--out", root / "eval_choice",
                 "--postprocess-target", "lesion")
    assert result.exit_code == 0, result.output
    tuning = json.loads((root / "eval_choice" / "summary.json").read_text())["postprocessing"]
    assert (tuning["best_min_component_ml"], tuning["best_min_enhancing_ml"]) == choice
    assert (tuning["min_component_ml_in_use"], tuning["min_enhancing_ml_in_use"]) == choice
    assert tuning["mean_dice_off"] == pytest.approx(record["mean_off"], abs=1e-5)
    assert tuning["mean_dice_in_use"] == pytest.approx(record["mean_chosen"], abs=1e-5)
    rows = {r["case_id"]: r for r in csv.DictReader((root / "eval_choice" / "cases.csv").open())}
    for case in record["cases"]:
        assert case["chosen"] == pytest.approx([float(rows[case["case_id"]][f"lesion_dice_{k}"])
                                                for k in ("WT", "TC", "ET")], abs=1e-4)


def test_the_choice_is_set_again_for_the_same_model_and_made_again_for_another(trained):
    import dataclasses

    from kerasbrain.evaluation.postprocess_choice import RECORD
    from kerasbrain.families import get_family

    root, data, run_dir = trained
    family = get_family("unet3d")
    config = family.load_config(str(root / "tiny.toml"))
    original = json.loads((run_dir / RECORD).read_text())
    config_json = json.loads((run_dir / "config.json").read_text())
    config_json["inference"].update(min_component_ml=0.0, min_enhancing_ml=0.0)  # as a resumed run rewrites it
    (run_dir / "config.json").write_text(json.dumps(config_json))
    planted = {**original, "min_component_ml": 0.2, "min_enhancing_ml": 0.05}
    (run_dir / RECORD).write_text(json.dumps(planted))
    lines = []
    assert family.choose_postprocessing(run_dir, data, config, lines.append) == planted
    assert lines == []  # nothing predicted: the same model and settings
    inference = json.loads((run_dir / "config.json").read_text())["inference"]
    assert (inference["min_component_ml"], inference["min_enhancing_ml"]) == (0.2, 0.05)
    (run_dir / RECORD).write_text(json.dumps({**planted, "asked": {**planted["asked"], "model_sha256": "0" * 64}}))
    record = family.choose_postprocessing(run_dir, data, config, lines.append)  # "another model": chosen again
    assert sum("post-processing [" in line for line in lines) == 3
    assert record == json.loads((run_dir / RECORD).read_text()) and record["cases"] == original["cases"]
    inference = json.loads((run_dir / "config.json").read_text())["inference"]
    assert (inference["min_component_ml"], inference["min_enhancing_ml"]) == (original["min_component_ml"],
                                                                              original["min_enhancing_ml"])
    # a record made under other candidates or another tie rule (before "rule" was recorded): chosen again
    (run_dir / RECORD).write_text(json.dumps({**planted, "asked": {k: v for k, v in planted["asked"].items()
                                                                   if k != "rule"}}))
    lines.clear()
    assert family.choose_postprocessing(run_dir, data, config, lines.append)["cases"] == original["cases"]
    assert sum("post-processing [" in line for line in lines) == 3
    off = dataclasses.replace(config, postprocessing=dataclasses.replace(config.postprocessing, choose_on="off"))
    assert family.choose_postprocessing(run_dir, data, off, lines.append) is None


def test_evaluate_writes_per_case_and_summary(trained):
    root, data, run_dir = trained
    result = run("evaluate", "--model", run_dir, "--data", data, "--out", root / "eval")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((root / "eval" / "cases.csv").open()))
    assert [r["case_id"] for r in rows] == ["BRATS_001", "BRATS_002", "BRATS_003"]
    summary = json.loads((root / "eval" / "summary.json").read_text())
    assert summary["dice_WT"]["n"] == 3
    for r in rows:  # seed 003's soft Dice: per region, and its mean as the seed reports it
        assert float(r["soft_dice_mean"]) == pytest.approx(np.mean([float(r[f"soft_dice_{k}"]) for k in
                                                                    ("WT", "TC", "ET")]), abs=1e-6)
    values = [float(r["dice_WT"]) for r in rows]
    assert summary["dice_WT"]["mean"] == pytest.approx(np.mean(values))
    assert "| dice_WT |" in result.output
    # without uncertainty, the confidence is the expected Dice alone
    assert "agreement_WT" not in rows[0] and list(summary["failure_detection"]) == ["expected_dice"]
    assert all(r["input_warnings"] == "" for r in rows) and "input_warnings" not in summary
    assert all(0 <= float(r[f"expected_dice_{k}"]) <= 1 for r in rows for k in ("WT", "TC", "ET"))
    assert summary["failure_detection"]["expected_dice"]["WT"]["cases"] == 3
    assert "Case confidence `expected_dice`" in result.output
    # the post-processing these cases favour, consistent with the per-case Dice with both rules off
    tuning = summary["postprocessing"]
    inference = json.loads((run_dir / "config.json").read_text())["inference"]  # as training chose it
    assert tuning["min_component_ml_in_use"] == inference["min_component_ml"]
    assert tuning["min_enhancing_ml_in_use"] == inference["min_enhancing_ml"]
    assert tuning["min_part_ml_in_use"] == inference["min_part_ml"] == 0.01  # the speck rule, on by default
    assert "min_component_ml =" in result.output and "min_enhancing_ml =" in result.output
    mean_dice = np.mean([[float(r[f"dice_{k}"]) for k in ("WT", "TC", "ET")] for r in rows])
    assert tuning["mean_dice_in_use"] == pytest.approx(mean_dice, abs=1e-6)
    if (tuning["min_component_ml_in_use"], tuning["min_enhancing_ml_in_use"]) == (0.0, 0.0):
        assert tuning["mean_dice_off"] == pytest.approx(mean_dice, abs=1e-6)
    for key in ("min_component_ml", "min_enhancing_ml"):
        by = tuning[f"mean_dice_by_{key}"]
        assert by[str(tuning[f"best_{key}"])] == max(by.values()) == tuning["mean_dice_best"] >= tuning["mean_dice_off"]
    result = run("evaluate", "--model", run_dir / "best.keras", "--data", data, "--out", root / "eval_val",
                 "--subset", "validation")
    split = json.loads((run_dir / "split.json").read_text())
    rows = list(csv.DictReader((root / "eval_val" / "cases.csv").open()))
    assert [r["case_id"] for r in rows] == split["validation"]


def test_evaluate_scores_lesion_by_lesion_as_the_saved_predictions_say(trained, tmp_path):
    """Lesion-wise scores in cases.csv and lesions.csv are those of the written label maps against the truth."""
    from kerasbrain.data.labels import to_internal
    from kerasbrain.metrics.lesion_wise import LesionSettings, lesion_wise_region_scores

    root, data, run_dir = trained
    result = run("evaluate", "--model", run_dir, "--data", data, "--out", tmp_path / "eval", "--save-predictions",
                 "--lesion-preset", "MET", "--postprocess-target", "lesion")
    assert result.exit_code == 0, result.output
    assert "lesion-wise WT=" in result.output and "per-lesion scores: " in result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["lesion_wise"] == {"preset": "MET", "dilation": 1, "min_volume_mm3": 2.0}
    assert summary["postprocessing"]["target"] == "lesion" and "lesion-wise Dice" in result.output
    rows = {r["case_id"]: r for r in csv.DictReader((tmp_path / "eval" / "cases.csv").open())}
    lesions = list(csv.DictReader((tmp_path / "eval" / "lesions.csv").open()))
    for case, row in rows.items():
        pred = to_internal(np.asarray(nib.load(tmp_path / "eval" / "predictions" / f"{case}.nii.gz").dataobj), "msd")
        truth = nib.load(data / "labelsTr" / f"{case}.nii.gz")
        spacing = tuple(float(z) for z in truth.header.get_zooms()[:3])
        expected, expected_rows = lesion_wise_region_scores(pred, to_internal(np.asarray(truth.dataobj), "msd"),
                                                            spacing, LesionSettings.of("MET"))
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(value, abs=1e-6), (case, key)
        assert len([r for r in lesions if r["case_id"] == case]) == len(expected_rows)
    for lesion in lesions:  # the mean probability of what was predicted (within (0, 1]); none where nothing was
        value = float(lesion["mean_probability"])
        assert np.isnan(value) if lesion["predicted_components"] == "0" else 0 < value <= 1, lesion
    assert summary["lesion_dice_WT"]["mean"] == pytest.approx(np.mean([float(r["lesion_dice_WT"])
                                                                        for r in rows.values()]))
    bad = run("evaluate", "--model", run_dir, "--data", data, "--out", tmp_path / "bad", "--lesion-threshold", "-1")
    assert bad.exit_code == 2


def test_evaluate_names_a_copied_sequence_beside_the_cases_scores(trained, tmp_path):
    root, data, run_dir = trained
    copy = tmp_path / "Task01_BrainTumour"
    shutil.copytree(data, copy)
    path = copy / "imagesTr" / "BRATS_002.nii.gz"
    source = nib.load(path)
    image = np.asarray(source.dataobj).copy()
    image[..., 2] = image[..., 1]
    nib.save(nib.Nifti1Image(image, source.affine, source.header), path)
    result = run("evaluate", "--model", run_dir, "--data", copy, "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert "BRATS_002: dice_WT=" in result.output and "| WARNING: t1gd is a copy of T1w" in result.output
    rows = {r["case_id"]: r for r in csv.DictReader((tmp_path / "eval" / "cases.csv").open())}
    assert rows["BRATS_002"]["input_warnings"].startswith("t1gd is a copy of T1w")
    assert rows["BRATS_001"]["input_warnings"] == rows["BRATS_003"]["input_warnings"] == ""


def test_evaluate_scores_the_readable_cases_and_fails_for_the_broken_one(trained, tmp_path):
    root, data, run_dir = trained
    copy = tmp_path / "Task01_BrainTumour"
    shutil.copytree(data, copy)
    broken = copy / "imagesTr" / "BRATS_002.nii.gz"
    broken.write_bytes(broken.read_bytes()[:5000])
    result = run("evaluate", "--model", run_dir, "--data", copy, "--out", tmp_path / "eval")
    assert result.exit_code == 1, result.output
    assert "[2/3] BRATS_002: FAILED: " in result.output and "1 case(s) could not be scored" in result.output
    rows = list(csv.DictReader((tmp_path / "eval" / "cases.csv").open()))
    assert [r["case_id"] for r in rows] == ["BRATS_001", "BRATS_003"]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["dice_WT"]["n"] == 2 and summary["failed"][0]["case_id"] == "BRATS_002"


def test_predict_writes_in_the_input_grid(trained):
    root, data, run_dir = trained
    image = data / "imagesTs" / "BRATS_004.nii.gz"
    out = root / "pred" / "BRATS_004_seg.nii.gz"
    result = run("predict", "--model", run_dir / "best.keras", "--input", image, "--out", out, "--probabilities")
    assert result.exit_code == 0, result.output
    src, seg = nib.load(image), nib.load(out)
    assert seg.shape == src.shape[:3]
    np.testing.assert_array_equal(seg.affine, src.affine)
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 3}  # MSD numbering
    probs = nib.load(root / "pred" / "BRATS_004_seg_probabilities.nii.gz")
    assert probs.shape == src.shape[:3] + (3,)
    # the label map is the thresholded, BraTS-nested decoding of the written probabilities, its
    # specks (parts below the default [inference] min_part_ml) given to the region around them
    from kerasbrain.inference.postprocess import MIN_PART_ML, remove_specks

    p = np.asarray(probs.dataobj) >= 0.5
    internal = np.select([p[..., 2], p[..., 1], p[..., 0]], [3, 1, 2], 0).astype(np.uint8)  # ET 3, NCR 1, ED 2
    internal = remove_specks(internal, src.header.get_zooms()[:3], MIN_PART_ML)
    assert not np.array_equal(internal, np.select([p[..., 2], p[..., 1], p[..., 0]], [3, 1, 2], 0))  # it took some
    expected = np.array([0, 2, 1, 3])[internal]  # MSD: ET 3, NET 2, edema 1
    np.testing.assert_array_equal(np.asarray(seg.dataobj), expected)
    assert (root / "pred" / "BRATS_004_seg.png").stat().st_size > 1000
    # the report: each lesion's mean probability and the case's confidence, without --uncertainty too
    report = json.loads((root / "pred" / "BRATS_004_seg_report.json").read_text())
    assert report["lesions"] and all(0 < x["mean_probability"] <= 1 for x in report["lesions"])
    assert sorted(report["confidence"]) == ["expected_dice", "note"]
    assert "estimated Dice WT/TC/ET" in result.output and "member agreement" not in result.output
    assert report["input_warnings"] == [] and "WARNING" not in result.output


def test_predict_names_a_copied_sequence_in_its_output_report_and_folder_table(trained, tmp_path):
    root, data, run_dir = trained
    source = nib.load(data / "imagesTs" / "BRATS_004.nii.gz")
    image = np.asarray(source.dataobj).copy()
    image[..., 2] = image[..., 1]  # no post-contrast T1: the pre-contrast one sent in its place
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(image, source.affine, source.header), tmp_path / "in" / "BRATS_004.nii.gz")
    result = run("predict", "--model", run_dir, "--input", tmp_path / "in" / "BRATS_004.nii.gz",
                 "--out", tmp_path / "one.nii.gz")
    assert result.exit_code == 0, result.output  # a warning, not a refusal
    assert "WARNING: t1gd is a copy of T1w" in result.output
    report = json.loads((tmp_path / "one_report.json").read_text())
    assert [w[:26] for w in report["input_warnings"]] == ["t1gd is a copy of T1w (in-"]
    folder = run("predict", "--model", run_dir, "--input", tmp_path / "in", "--out", tmp_path / "out")
    assert folder.exit_code == 0, folder.output
    (row,) = csv.DictReader((tmp_path / "out" / "predictions.csv").open())
    assert row["input_warnings"].startswith("t1gd is a copy of T1w")


def test_predict_uncertainty_writes_the_members_spread_and_each_lesions_confidence(trained, tmp_path):
    """--uncertainty keeps mirror TTA's label map; its maps are the entropy of the written probabilities
    and a variance within [0, 0.25]; the report's lesions are the label map's components, each with its
    mean probability."""
    from scipy import ndimage

    from kerasbrain.data.labels import labels_to_regions, to_internal
    from kerasbrain.inference.uncertainty import binary_entropy

    root, data, run_dir = trained
    image = data / "imagesTs" / "BRATS_004.nii.gz"
    mirrored = run("predict", "--model", run_dir, "--input", image, "--out", tmp_path / "m.nii.gz", "--mirror")
    result = run("predict", "--model", run_dir, "--input", image, "--out", tmp_path / "u.nii.gz", "--uncertainty",
                 "--probabilities")
    assert mirrored.exit_code == 0 and result.exit_code == 0, result.output
    assert "uncertainty over 8 mirror views:" in result.output
    labels = np.asarray(nib.load(tmp_path / "u.nii.gz").dataobj)
    np.testing.assert_array_equal(labels, np.asarray(nib.load(tmp_path / "m.nii.gz").dataobj))
    probs = np.asarray(nib.load(tmp_path / "u_probabilities.nii.gz").dataobj)
    entropy = nib.load(tmp_path / "u_entropy.nii.gz")
    variance = np.asarray(nib.load(tmp_path / "u_variance.nii.gz").dataobj)
    np.testing.assert_array_equal(entropy.affine, nib.load(image).affine)
    np.testing.assert_allclose(np.asarray(entropy.dataobj), binary_entropy(probs), atol=1e-5)
    assert variance.shape == probs.shape and variance.min() >= 0 and variance.max() <= 0.25
    report = json.loads((tmp_path / "u_report.json").read_text())
    assert report["uncertainty"]["members"] == 8
    canonical = {name: np.asarray(nib.as_closest_canonical(nib.load(tmp_path / name)).dataobj)
                 for name in ("u.nii.gz", "u_probabilities.nii.gz")}  # the report's voxels are RAS+
    regions = labels_to_regions(to_internal(canonical["u.nii.gz"], "msd")).astype(bool)
    canonical_probs = canonical["u_probabilities.nii.gz"]
    for r, region in enumerate(("WT", "TC", "ET")):
        mine = [x for x in report["lesions"] if x["region"] == region]
        components, n = ndimage.label(regions[..., r], np.ones((3, 3, 3)))
        assert len(mine) == n, region
        voxel_ml = np.prod(nib.load(image).header.get_zooms()[:3]) / 1000
        assert sorted(x["volume_ml"] for x in mine) == pytest.approx(
            sorted(np.bincount(components.ravel())[1:] * voxel_ml), abs=1e-4)
        for x in mine:  # each lesion's confidence is its mean probability inside
            inside = components == next(i for i in range(1, n + 1) if np.allclose(
                np.mean(np.argwhere(components == i), 0), x["centre_voxel"], atol=0.051))
            assert x["mean_probability"] == pytest.approx(float(canonical_probs[..., r][inside].mean()), abs=1e-4)
        # the case's confidence: 2 sum of p over the mask / (mask size + sum of p), from the written files
        p = canonical_probs[..., r].astype(np.float64)
        expected = 2 * p[regions[..., r]].sum() / (regions[..., r].sum() + p.sum())
        assert report["confidence"]["expected_dice"][region] == pytest.approx(expected, abs=2e-3)
        assert 0 <= report["confidence"]["agreement"][region] <= 1
    assert "estimated Dice WT/TC/ET" in result.output and "member agreement" in result.output
    forced = run("predict", "--model", run_dir, "--input", image, "--out", tmp_path / "x.nii.gz",
                      "--uncertainty", "--no-mirror")
    # --uncertainty turns mirroring on whatever --mirror says
    assert forced.exit_code == 0 and "uncertainty over 8 mirror views:" in forced.output, forced.output


def test_evaluate_scores_the_uncertainty_against_a_shuffled_control(trained, tmp_path):
    root, data, run_dir = trained
    result = run("evaluate", "--model", run_dir, "--data", data, "--out", tmp_path / "eval", "--uncertainty")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "eval" / "cases.csv").open()))
    for region in ("WT", "TC", "ET"):
        for row in rows:
            score = float(row[f"qu_score_{region}"])
            areas = [float(row[f"qu_auc_{k}_{region}"]) for k in ("dice", "ftp", "ftn")]
            assert score == pytest.approx((areas[0] + 2 - areas[1] - areas[2]) / 3, abs=1e-9)
            assert row[f"qu_score_shuffled_{region}"] != "" and 0 <= float(row[f"ece_{region}"]) <= 1
    curves = json.loads((tmp_path / "eval" / "uncertainty.json").read_text())
    assert curves["cases"] == 3 and curves["thresholds"] == [100.0, 75.0, 50.0, 25.0, 0.0]
    wt = curves["mean"]["WT"]["uncertainty"]
    assert wt["score"] == pytest.approx(np.mean([float(r["qu_score_WT"]) for r in rows]))
    assert wt["ftp"][0] == 0 and wt["ftn"][0] == 0  # at threshold 100 nothing is filtered
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["uncertainty"]["WT"]["uncertainty"] == pytest.approx(wt["score"], abs=1e-4)
    # each case's confidence, and how well it ranks the cases, recomputed from cases.csv
    from kerasbrain.evaluation.failure_detection import failure_detection

    for score in ("expected_dice", "agreement"):
        for region in ("WT", "TC", "ET"):
            mine = failure_detection([float(r[f"{score}_{region}"]) for r in rows],
                                     [float(r[f"dice_{region}"]) for r in rows])
            assert summary["failure_detection"][score][region] == mine
    assert "Case confidence `agreement`" in (tmp_path / "eval" / "summary.md").read_text()
    assert (tmp_path / "eval" / "uncertainty.png").stat().st_size > 10_000


def test_calibrate_fits_a_temperature_per_region_and_keeps_the_label_map(trained, tmp_path):
    from kerasbrain.evaluation.region_calibration import scale_probabilities

    root, data, run_dir = trained
    result = run("calibrate", "--model", run_dir, "--data", data)
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "calibration" / "calibration.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())
    assert report["cases"] == split["validation"] and set(report["temperatures"]) == {"WT", "TC", "ET"}
    assert all(report["after"][r]["nll"] <= report["before"][r]["nll"] + 1e-9 for r in ("WT", "TC", "ET"))
    assert (run_dir / "calibration" / "reliability.png").stat().st_size > 10_000
    image = data / "imagesTs" / "BRATS_004.nii.gz"
    for name in ("best.keras", "calibrated.keras"):
        done = run("predict", "--model", run_dir / name, "--input", image, "--out", tmp_path / f"{name}.nii.gz",
                   "--probabilities")
        assert done.exit_code == 0, done.output
    labels = [np.asarray(nib.load(tmp_path / f"{n}.nii.gz").dataobj) for n in ("best.keras", "calibrated.keras")]
    probs = [np.asarray(nib.load(tmp_path / f"{n}_probabilities.nii.gz").dataobj)
             for n in ("best.keras", "calibrated.keras")]
    # a temperature never moves the 0.5 threshold: the label maps are equal but where a probability of
    # this barely trained model is a float rounding away from 0.5 (folded weights round differently)
    moved = labels[0] != labels[1]
    assert moved.sum() <= 3, moved.sum()
    assert (np.abs(probs[0][moved] - 0.5).min(axis=-1) < 1e-4).all(), probs[0][moved]
    inside = probs[0][..., 0] > 0  # the head's crop (0 outside it in both)
    for r, region in enumerate(("WT", "TC", "ET")):  # window blending mixes scaled windows: close, not exact
        np.testing.assert_allclose(probs[1][..., r][inside], scale_probabilities(
            probs[0][..., r][inside], report["temperatures"][region]), atol=0.02)


def test_predict_a_folder_goes_on_past_a_broken_case_and_exits_non_zero(trained, tmp_path):
    root, data, run_dir = trained
    folder = tmp_path / "incoming"
    folder.mkdir()
    for case in ("BRATS_001", "BRATS_002"):
        shutil.copyfile(data / "imagesTr" / f"{case}.nii.gz", folder / f"{case}.nii.gz")
    (folder / "BRATS_000.nii.gz").write_bytes((data / "imagesTr" / "BRATS_003.nii.gz").read_bytes()[:4000])
    result = run("predict", "--model", run_dir, "--input", folder, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "[1/3] BRATS_000: FAILED: " in result.output and "BRATS_000.nii.gz: cannot be read as NIfTI" in result.output
    assert "2 of 3 cases predicted, 1 failed" in result.output
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert [(r["case"], r["status"]) for r in rows] == [("BRATS_000", "failed"), ("BRATS_001", "ok"), ("BRATS_002", "ok")]
    for row in rows[1:]:  # each case's confidence, as its report says, to sort the folder for review
        report = json.loads((tmp_path / "out" / f"{row['case']}_seg_report.json").read_text())
        assert [float(row[f"expected_dice_{r}"]) for r in ("WT", "TC", "ET")] == [
            report["confidence"]["expected_dice"][r] for r in ("WT", "TC", "ET")]
    assert rows[0]["expected_dice_WT"] == ""
    lowest = min((float(row[f"expected_dice_{r}"]), row["case"], r) for row in rows[1:] for r in ("WT", "TC", "ET"))
    assert f"review first): {lowest[1]} ({lowest[2]} {lowest[0]:.2f})" in result.output
    assert not (tmp_path / "out" / "BRATS_000_seg.nii.gz").exists()
    for case in ("BRATS_001", "BRATS_002"):  # the same bytes as predicting each case alone
        single = tmp_path / f"{case}.nii.gz"
        assert run("predict", "--model", run_dir, "--input", folder / f"{case}.nii.gz", "--out", single).exit_code == 0
        assert (tmp_path / "out" / f"{case}_seg.nii.gz").read_bytes() == single.read_bytes()


def test_predict_a_brats_dataset_folder_keeps_its_label_numbering(trained, brats2021_dir, tmp_path):
    _, _, run_dir = trained
    result = run("predict", "--model", run_dir, "--input", brats2021_dir, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    cases = sorted(p.name for p in brats2021_dir.iterdir() if p.is_dir())
    assert f"{len(cases)} of {len(cases)} cases predicted" in result.output
    for case in cases:  # the same prediction as in MSD numbering, renumbered as BraTS 2021 numbers labels
        brats = np.asarray(nib.load(tmp_path / "out" / f"{case}_seg.nii.gz").dataobj)
        msd_out = tmp_path / f"{case}_msd.nii.gz"
        assert run("predict", "--model", run_dir, "--input", brats2021_dir / case, "--out", msd_out,
                   "--labels", "msd").exit_code == 0
        msd = np.asarray(nib.load(msd_out).dataobj)
        assert set(np.unique(brats).tolist()) <= {0, 1, 2, 4} and (brats > 0).any()
        for msd_label, brats_label in ((1, 2), (2, 1), (3, 4)):  # edema, core, enhancing
            np.testing.assert_array_equal(brats == brats_label, msd == msd_label)


def test_predict_from_four_brats_files_matches_the_4d_file(trained, tmp_path):
    root, data, run_dir = trained
    img = nib.load(data / "imagesTr" / "BRATS_001.nii.gz")
    paths = []
    for m, name in enumerate(("flair", "t1", "t1ce", "t2")):
        p = tmp_path / f"case_{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., m], img.affine), p)
        paths += ["--input", p]
    a, b = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    assert run("predict", "--model", run_dir, *paths, "--out", a).exit_code == 0
    assert run("predict", "--model", run_dir, "--input", data / "imagesTr" / "BRATS_001.nii.gz", "--out", b).exit_code == 0
    np.testing.assert_array_equal(np.asarray(nib.load(a).dataobj), np.asarray(nib.load(b).dataobj))


def test_bad_inputs_exit_non_zero_and_write_nothing(trained, tmp_path):
    root, data, run_dir = trained
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    out = tmp_path / "never" / "mask.nii.gz"
    result = run("predict", "--model", run_dir, "--input", broken, "--out", out)
    assert result.exit_code == 1
    assert "broken.nii.gz: cannot be read as NIfTI" in result.output
    assert not out.exists()
    result = run("evaluate", "--model", broken, "--data", data)
    assert result.exit_code == 1 and "expected a .keras model file" in result.output
    result = run("train", "unet3d", "--data", tmp_path, "--out", tmp_path / "r")
    assert result.exit_code == 1 and "no dataset found" in result.output
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[model]\ndepht = 3\n")
    result = run("train", "unet3d", "--data", data, "--config", bad_config, "--out", tmp_path / "r2")
    assert result.exit_code == 1 and "unknown key(s) ['depht']" in result.output
    result = run("evaluate", "--model", run_dir, "--data", tmp_path / "missing")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for verb in ("synth", "train", "evaluate", "predict", "demo"):
        assert verb in result.stdout


@once  # the client's requests and blending; exported models equal Keras on both backends (tests/export)
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_predict_through_a_server_writes_what_local_predict_writes(trained, tmp_path, protocol):
    from kerasbrain.serving.server import ServerOptions, build_server

    root, data, run_dir = trained
    saved = tmp_path / "saved_models"
    assert run("export", "--model", run_dir, "--name", "tumor3d", "--root", saved).exit_code == 0
    server = build_server(model_name="tumor3d", model_base_path=saved / "tumor3d",
                          options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0)).start()
    try:
        url = f"http://127.0.0.1:{server.rest_port}" if protocol == "rest" else f"grpc://127.0.0.1:{server.grpc_port}"
        image = data / "imagesTr" / "BRATS_002.nii.gz"
        local, remote = tmp_path / "local.nii.gz", tmp_path / "remote.nii.gz"
        # No window flags: both sides must use the run's [inference] settings (32^3, overlap 0.25,
        # 2 windows per call), the remote one read from the export's manifest, not the defaults.
        common = ["--input", image, "--probabilities"]
        assert run("predict", "--model", run_dir, "--out", local, *common).exit_code == 0
        result = run("predict", "--server", url, "--model", "tumor3d", "--saved-models", saved, "--out", remote,
                     *common)
        assert result.exit_code == 0, result.output
        assert "default inference settings" not in result.output
        # without --probabilities the whole-case signature sends the label map alone, with its estimate
        bare = tmp_path / "bare.nii.gz"
        result = run("predict", "--server", url, "--model", "tumor3d", "--saved-models", saved, "--out", bare,
                     "--input", image)
        assert result.exit_code == 0, result.output
    finally:
        server.stop()
    np.testing.assert_array_equal(np.asarray(nib.load(bare).dataobj), np.asarray(nib.load(local).dataobj))
    reports = {name: json.loads((tmp_path / f"{name}_report.json").read_text()) for name in ("local", "remote", "bare")}
    np.testing.assert_array_equal(np.asarray(nib.load(remote).dataobj), np.asarray(nib.load(local).dataobj))
    p_local = np.asarray(nib.load(tmp_path / "local_probabilities.nii.gz").dataobj)
    p_remote = np.asarray(nib.load(tmp_path / "remote_probabilities.nii.gz").dataobj)
    # A trained model's larger activations make float32 summation order visible when the local and the
    # served graph are compiled differently (JAX's XLA vs the SavedModel); the label maps are identical.
    assert np.abs(p_local - p_remote).max() <= 5e-4
    # with the probabilities the served case is estimated as the local one
    for region, value in reports["local"]["confidence"]["expected_dice"].items():
        assert reports["remote"]["confidence"]["expected_dice"][region] == pytest.approx(value, abs=2e-3), region
    # without them, the server's estimate: of its label map before post-processing, under its probabilities
    # (never one computed from the 0/1 regions that came back), and no lesion probabilities
    from kerasbrain.data.labels import REGIONS, labels_to_regions, regions_to_labels
    from kerasbrain.metrics.case_confidence import expected_dice

    regions = labels_to_regions(regions_to_labels(p_remote >= 0.5)).astype(bool)
    for i, region in enumerate(REGIONS):
        assert reports["bare"]["confidence"]["expected_dice"][region] == pytest.approx(
            expected_dice(p_remote[..., i], regions[..., i]), abs=2e-3), region
    assert "computed by the server" in reports["bare"]["confidence"]["note"]
    assert reports["bare"]["lesions"] == [{k: v for k, v in x.items() if k != "mean_probability"}
                                          for x in reports["local"]["lesions"]]
    np.testing.assert_array_equal(nib.load(remote).affine, nib.load(image).affine)


def test_predict_server_errors(trained, tmp_path):
    root, data, _ = trained
    result = run("predict", "--server", "http://127.0.0.1:9", "--model", "tumor3d",
                 "--input", data / "imagesTs" / "BRATS_004.nii.gz", "--out", tmp_path / "x.nii.gz")
    assert result.exit_code == 1 and "is not available" in result.output
    result = run("predict", "--server", "ftp://host", "--model", "m", "--input", data / "imagesTs" / "BRATS_004.nii.gz",
                 "--out", tmp_path / "x.nii.gz")
    assert result.exit_code == 1 and "http://, https:// or grpc://" in result.output
    result = run("predict", "--server", "http://127.0.0.1:9", "--model", "m", "--precision", "bf16",
                 "--input", data / "imagesTs" / "BRATS_004.nii.gz", "--out", tmp_path / "x.nii.gz")
    assert result.exit_code == 1 and "--precision applies to local prediction only" in result.output
    assert not (tmp_path / "x.nii.gz").exists()


def test_explain_refuses_a_volume_model_for_what_it_is(trained, tmp_path):
    """A valid NIfTI given to a 3-D model: the family's refusal and its pointer, not "not a picture"."""
    _, data, run_dir = trained
    result = run("explain", "--model", run_dir, "--input", data / "imagesTs" / "BRATS_004.nii.gz",
                 "--out", tmp_path / "heat.png")
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"Error: {run_dir}: a unet3d model cannot explain a prediction (explanations are of a class decision; "
        "`predict --uncertainty` maps where the mask is unsure)"]
    assert not (tmp_path / "heat.png").exists()


def test_export_manifest_carries_the_run_settings(trained, tmp_path):
    from kerasbrain.export.layout import read_manifest

    _, _, run_dir = trained
    result = run("export", "--model", run_dir / "best.keras", "--name", "m", "--root", tmp_path, "--no-warmup",
                 "--backend", keras.backend.backend())  # in this process (the default's child: tests/export)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "m" / "1")
    assert manifest["family"] == "unet3d" and manifest["kind"] == "volume_segmentation"
    assert manifest["inference"]["window"] == [32, 32, 32] and manifest["inference"]["overlap"] == 0.25
    assert manifest["out_channels"] == 3 and manifest["target_spacing"] == []
