"""End-to-end: 2-D slice training, evaluation and prediction from the command line."""

import csv
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once_on

TINY = """
[data]
n_splits = 4
test_fold = 1
enhance = true
[model]
encoder = "resnet18"
[training]
batch_size = 4
[[stages]]
epochs = 1
learning_rate = 1e-3
freeze_encoder = true
[[stages]]
epochs = 1
learning_rate = 1e-4
"""


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


#: What each `fit` of the two-stage run saw: encoder trainable, learning rate, whether the encoder moved.
FIT_CALLS = []


def _recording_fit(fit):
    def recorded(model, *args, **kwargs):
        import keras

        before = [keras.ops.convert_to_numpy(w).copy() for w in model.encoder.weights]
        trainable = model.encoder.trainable
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        result = fit(model, *args, **kwargs)
        # kernels, biases, scales and offsets; a batch norm's moving statistics are not trained weights
        moved = any(not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, model.encoder.weights)
                    if "moving_" not in w.path)
        FIT_CALLS.append({"encoder_trainable": trainable, "learning_rate": rate, "encoder_moved": moved})
        return result

    return recorded


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("slices")
    # 64 x 64 slices: the pipeline is the same as at kaggle_3m's 256 x 256, at a sixteenth of the cost
    result = run("synth", "lgg", "--patients", 5, "--slices", 4, "--image-size", 64, "--out", root / "lgg",
                 "--seed", 2)
    assert result.exit_code == 0, result.output
    (root / "tiny.toml").write_text(TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "fit", _recording_fit(keras.Model.fit))
        result = run("train", "unet2d", "--data", root / "lgg", "--config", root / "tiny.toml", "--out", root / "run")
    assert result.exit_code == 0, result.output
    return root


def test_two_stage_run(slice_run):
    rows = list(csv.DictReader((slice_run / "run" / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # stage 2 continues the epoch count
    # stage 1 trains the decoder only at its rate; stage 2 trains everything at its own
    assert FIT_CALLS == [{"encoder_trainable": False, "learning_rate": pytest.approx(1e-3), "encoder_moved": False},
                         {"encoder_trainable": True, "learning_rate": pytest.approx(1e-4), "encoder_moved": True}]
    split = json.loads((slice_run / "run" / "split.json").read_text())
    assert not set(split["train"]) & set(split["validation"])


def test_evaluate_slices(slice_run):
    result = run("evaluate", "--model", slice_run / "run", "--data", slice_run / "lgg", "--subset", "test",
                 "--out", slice_run / "eval")
    assert result.exit_code == 0, result.output
    split = json.loads((slice_run / "run" / "split.json").read_text())
    rows = list(csv.DictReader((slice_run / "eval" / "slices.csv").open()))
    assert {r["patient"] for r in rows} == set(split["test"]) and len(rows) == 4 * len(split["test"])
    summary = json.loads((slice_run / "eval" / "summary.json").read_text())
    assert set(summary) == {"pixels", "images", "patients", "failure_detection", "next_to_predicted_tumour"}
    # the pooled Dice is the Tumor F1 scikit-learn computes over the same pixels (its report, 4 digits)
    report = (slice_run / "eval" / "classification_report.txt").read_text()
    tumour_f1 = float(next(line for line in report.splitlines() if line.strip().startswith("Tumor")).split()[3])
    assert summary["pixels"]["dice"] == pytest.approx(tumour_f1, abs=6e-5)
    # the per-image summary is the mean of the per-slice rows (undefined scores left out)
    for key in ("dice", "precision", "recall"):
        values = [float(r[key]) for r in rows if r[key] not in ("", "nan")]
        values = [v for v in values if not np.isnan(v)]
        expected = np.mean(values) if values else float("nan")  # a model predicting nothing has no precision
        np.testing.assert_allclose(summary["images"][key], expected, rtol=1e-6, equal_nan=True, err_msg=key)
    assert "Tumor" in (slice_run / "eval" / "classification_report.txt").read_text()
    # one row per patient: their slices counted from the files, the mean over patients in the summary
    patients = list(csv.DictReader((slice_run / "eval" / "patients.csv").open()))
    assert [p["patient"] for p in patients] == sorted(split["test"])
    for p in patients:
        masks = sorted((slice_run / "lgg" / "kaggle_3m" / p["patient"]).glob("*_mask.tif"))
        assert int(p["slices"]) == len(masks) == 4
        assert int(p["tumour_slices"]) == sum(cv2.imread(str(m), cv2.IMREAD_GRAYSCALE).any() for m in masks)
        # a patient whose every slice scores Dice 1 scores 1; the estimate is a Dice between 0 and 1
        if all(float(r["dice"]) == 1.0 for r in rows if r["patient"] == p["patient"]):
            assert float(p["dice"]) == 1.0
        assert 0.0 <= float(p["expected_dice"]) <= 1.0
    assert summary["patients"]["dice"] == pytest.approx(np.mean([float(p["dice"]) for p in patients]), rel=1e-6)
    # how well the estimate finds the worst slices and patients, recomputed from the two tables
    from kerasbrain.evaluation.failure_detection import failure_detection

    for unit, table in (("slices", rows), ("patients", patients)):
        expected = failure_detection([float(r["expected_dice"]) for r in table], [float(r["dice"]) for r in table])
        assert summary["failure_detection"]["expected_dice"][unit] == pytest.approx(expected, nan_ok=True), unit
    assert "mean over patients" in result.output and "Sort slices.csv or patients.csv" in result.output
    # slices with nothing predicted (no precision) next to a slice of the same patient with a prediction
    predicted = {(r["patient"], int(r["slice"])): r["precision"] not in ("", "nan") for r in rows}
    near = {k for k, found in predicted.items() if not found and (predicted.get((k[0], k[1] - 1))
                                                                 or predicted.get((k[0], k[1] + 1)))}
    assert {(r["patient"], int(r["slice"])) for r in rows if r["next_to_predicted_tumour"] == "True"} == near
    assert summary["next_to_predicted_tumour"] == {
        "slices": len(near), "hold_tumour": sum(r["recall"] not in ("", "nan") for r in rows
                                                if (r["patient"], int(r["slice"])) in near)}


def test_evaluate_slices_reports_an_unreadable_slice_and_scores_the_rest(slice_run, tmp_path):
    import shutil

    data = tmp_path / "lgg"
    shutil.copytree(slice_run / "lgg", data)
    broken = sorted(data.glob("kaggle_3m/*/*_2.tif"))[0]
    broken.write_bytes(broken.read_bytes()[:200])
    result = run("evaluate", "--model", slice_run / "run", "--data", data, "--out", tmp_path / "eval")
    assert result.exit_code == 1 and f"{broken.name}: FAILED: " in result.output, result.output
    rows = list(csv.DictReader((tmp_path / "eval" / "slices.csv").open()))
    assert len(rows) == 5 * 4 - 1
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["failed"][0]["case_id"].endswith(broken.name)


def test_predict_one_slice(slice_run, tmp_path):
    image = sorted((slice_run / "lgg" / "kaggle_3m").glob("*/*_2.tif"))[0]
    truth = image.with_name(image.name.replace(".tif", "_mask.tif"))
    out = tmp_path / "mask.png"
    result = run("predict", "--model", slice_run / "run" / "best.keras", "--input", image, "--truth", truth,
                 "--out", out)
    assert result.exit_code == 0, result.output
    mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
    assert (tmp_path / "mask_figure.png").stat().st_size > 1000
    # the estimated Dice is the expected Dice of the written mask under the model's own probabilities
    from kerasbrain.data.pictures import read_rgb
    from kerasbrain.data.slices import median_clahe, to_float
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.inference.predict_slices import predict_slice_probabilities
    from kerasbrain.metrics.case_confidence import expected_dice

    model = load_model(slice_run / "run" / "best.keras")
    prob = predict_slice_probabilities(model, to_float(median_clahe(read_rgb(image)))[None])[0]  # the run enhances
    np.testing.assert_array_equal(prob >= 0.5, mask > 0)
    assert f"estimated Dice {expected_dice(prob, mask > 0):.2f}" in result.output, result.output
    result = run("predict", "--model", slice_run / "run", "--input", image, "--out", tmp_path / "m.nii.gz")
    assert result.exit_code == 1 and "must be a .png mask" in result.output
    result = run("predict", "--model", slice_run / "run", "--input", image, "--out", tmp_path / "m.png",
                 "--window", 32, 32, 32)
    assert result.exit_code == 1 and "--window applies to volumetric models" in result.output
    assert not (tmp_path / "m.png").exists()


def test_predict_a_patients_folder_sorts_its_slices_for_review(slice_run, tmp_path):
    patient = sorted((slice_run / "lgg" / "kaggle_3m").iterdir())[0]
    result = run("predict", "--model", slice_run / "run", "--input", patient, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    # the masks beside the slices are labels, not cases
    assert [r["case"] for r in rows] == sorted(p.stem for p in patient.glob("*.tif") if not p.stem.endswith("_mask"))
    assert all(r["status"] == "ok" and 0.0 <= float(r["expected_dice_tumour"]) <= 1.0 for r in rows)
    least = sorted(rows, key=lambda r: float(r["expected_dice_tumour"]))[0]
    assert (f"least confident (lowest estimated Dice; review first): {least['case']} "
            f"(tumour {float(least['expected_dice_tumour']):.2f})") in result.output
    # each slice's predicted tumour as its written mask has it; the slices named beside: nothing predicted,
    # a predicted tumour on the next or previous slice
    pixels = {r["case"]: int(r["tumour_pixels"]) for r in rows}
    for case, count in pixels.items():
        assert count == np.count_nonzero(cv2.imread(str(tmp_path / "out" / f"{case}.png"), cv2.IMREAD_UNCHANGED))
    index = {int(case.rsplit("_", 1)[1]): count for case, count in pixels.items()}
    near = sorted(f"{patient.name}_{k}" for k, count in index.items()
                  if count == 0 and (index.get(k - 1) or index.get(k + 1)))
    if near:
        assert f"review too): {', '.join(near)}" in result.output, result.output
    else:
        assert "nothing predicted next to" not in result.output


def test_a_run_made_before_run_json_still_evaluates_the_same(slice_run, tmp_path):
    import shutil

    legacy = tmp_path / "legacy_run"
    shutil.copytree(slice_run / "run", legacy, ignore=shutil.ignore_patterns("backup", "logs"))
    (legacy / "run.json").unlink()
    outs = []
    for model in (slice_run / "run", legacy):
        outs.append(tmp_path / f"eval_{model.name}")
        result = run("evaluate", "--model", model, "--data", slice_run / "lgg", "--subset", "test", "--out", outs[-1])
        assert result.exit_code == 0, result.output
    assert (outs[0] / "slices.csv").read_text() == (outs[1] / "slices.csv").read_text()


@once_on("jax")  # evens out the two backends' runs (tests/run_all.sh): TensorFlow carries the serving tests
def test_lgg_compare_quick(slice_run):
    out = slice_run / "compare"
    result = run("reproduce", "seed004", "--data", slice_run / "lgg", "--out", out, "--quick")  # quick: ResNet18
    assert result.exit_code == 0, result.output
    assert "## Beside seed 004's published table" in (out / "reproduce.md").read_text()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["variant"] for r in rows] == ["raw-resnet18", "preprocessed-resnet18"]
    for r in rows:  # each row is its variant's evaluation and history, read back
        images = json.loads((out / r["variant"] / "evaluation" / "summary.json").read_text())["images"]
        for key in ("dice", "iou", "accuracy", "precision", "recall"):
            np.testing.assert_allclose(float(r[key]), images[key], rtol=1e-6, equal_nan=True, err_msg=key)
        history = list(csv.DictReader((out / r["variant"] / "history.csv").open()))
        assert float(r["val_loss"]) == pytest.approx(min(float(h["val_loss"]) for h in history), rel=1e-5)
    assert "| Model | Dice | IoU | Accuracy | Precision | Recall | Val loss |" in (out / "results.md").read_text()
    assert (out / "training_curves.png").stat().st_size > 1000
    histories = json.loads((out / "histories.json").read_text())  # what the curves draw: seed 004's train and val loss
    for name, h in histories.items():
        assert len(h["loss"]) == len(h["val_loss"]) == len(h["dice"]) == len(h["val_dice"]) == 2, name


def test_rerunning_a_finished_run_resumes_instead_of_restarting(slice_run):
    result = run("train", "unet2d", "--data", slice_run / "lgg", "--config", slice_run / "tiny.toml",
                 "--out", slice_run / "run")
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 2" in result.output
    rows = list(csv.DictReader((slice_run / "run" / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # nothing trained twice
