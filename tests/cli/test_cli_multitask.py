"""End-to-end: the multitask and classifier families from the command line on BRISC-layout phantoms."""

import csv
import json

import keras
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import TINY_MULTITASK_TOML as TINY, once, once_on



def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def brisc_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("multitask")
    result = run("synth", "brisc", "--out", root / "data", "--per-class", 4, "--seed", 5)
    assert result.exit_code == 0, result.output
    (root / "tiny.toml").write_text(TINY)
    result = run("train", "multitask", "--data", root / "data", "--config", root / "tiny.toml", "--out", root / "run")
    assert result.exit_code == 0, result.output
    return root


def test_the_run_records_its_family_split_and_both_tasks(brisc_run):
    run_dir = brisc_run / "run"
    assert json.loads((run_dir / "run.json").read_text())["family"] == "multitask"
    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["test"]) == 4 and not set(split["train"]) & set(split["validation"])
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    assert {"class_accuracy", "mask_dice", "val_class_accuracy", "val_mask_dice"} <= set(history[0])


def test_evaluate_writes_seed_000s_table_and_curves(brisc_run):
    out = brisc_run / "eval"
    result = run("evaluate", "--model", brisc_run / "run", "--data", brisc_run / "data", "--subset", "test",
                 "--out", out)
    assert result.exit_code == 0, result.output
    assert "| Class | Precision | Recall | F1-score | Support |" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"]["n"] == 4 and summary["masks"]["n"] == 3  # no mask for "no tumour"
    assert sum(map(sum, summary["classes"]["confusion_matrix"])) == 4
    rows = list(csv.DictReader((out / "images.csv").open()))
    assert len(rows) == 4 and {r["true_class"] for r in rows} == {"glioma", "meningioma", "no_tumor", "pituitary"}
    assert (out / "curves.png").stat().st_size > 10_000


def test_evaluate_reports_an_unreadable_image_and_scores_the_rest(brisc_run, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(brisc_run / "data", data)
    broken = sorted(data.rglob("classification_task/test/*/*.jpg"))[0]
    broken.write_bytes(broken.read_bytes()[:300])
    result = run("evaluate", "--model", brisc_run / "run", "--data", data, "--subset", "test", "--out", tmp_path / "e")
    assert result.exit_code == 1 and f"{broken.name}: FAILED: " in result.output, result.output
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["classes"]["n"] == 3 and summary["failed"][0]["case_id"] == broken.name


def test_predict_prints_the_class_and_draws_the_mask(brisc_run, tmp_path):
    image = sorted((brisc_run / "data" / "brisc2025" / "classification_task" / "test" / "pituitary").glob("*.jpg"))[0]
    result = run("predict", "--model", brisc_run / "run", "--input", image, "--out", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if l.startswith("class: "))
    probabilities = [float(part.split()[-1]) for part in line[7:].split(", ")]
    assert len(probabilities) == 4 and abs(sum(probabilities) - 1) < 2e-3 and probabilities == sorted(probabilities)[::-1]
    assert (tmp_path / "p.png").stat().st_size > 5000
    bad = run("predict", "--model", brisc_run / "run", "--input", image, "--out", tmp_path / "p.png", "--overlap", 0.5)
    assert bad.exit_code == 1 and "--overlap applies to volumetric models" in bad.output


def test_predict_a_folder_of_pictures_reports_the_unreadable_one(brisc_run, tmp_path):
    import shutil

    folder = tmp_path / "pictures"
    folder.mkdir()
    images = sorted((brisc_run / "data" / "brisc2025" / "classification_task" / "test").rglob("*.jpg"))[:2]
    for image in images:
        shutil.copyfile(image, folder / image.name)
    (folder / "broken.jpg").write_bytes(images[0].read_bytes()[:300])
    (folder / "notes.txt").write_text("not a picture, not a case")
    result = run("predict", "--model", brisc_run / "run", "--input", folder, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "2 of 3 cases predicted, 1 failed" in result.output, result.output
    assert "broken: FAILED: " in result.output and "broken.jpg" in result.output
    for image in images:
        single = tmp_path / "single" / "p.png"
        assert run("predict", "--model", brisc_run / "run", "--input", image, "--out", single).exit_code == 0
        assert (tmp_path / "out" / f"{image.stem}_mask.png").read_bytes() == (tmp_path / "single" / "p_mask.png").read_bytes()
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert sorted(r["status"] for r in rows) == ["failed", "ok", "ok"]


# Once, on JAX: on TensorFlow the classifier family trains in test_multitask_vs_baseline_quick
@once_on("jax")
def test_the_classifier_baseline_trains_from_the_same_data(brisc_run):
    result = run("train", "classifier", "--data", brisc_run / "data", "--config", brisc_run / "tiny.toml",
                 "--out", brisc_run / "classifier")
    assert result.exit_code == 0, result.output
    history = list(csv.DictReader((brisc_run / "classifier" / "history.csv").open()))
    assert "accuracy" in history[0] and "mask_dice" not in history[0]
    result = run("evaluate", "--model", brisc_run / "classifier", "--data", brisc_run / "data", "--subset", "test",
                 "--out", brisc_run / "eval_classifier")
    assert result.exit_code == 0, result.output
    assert "masks" not in json.loads((brisc_run / "eval_classifier" / "summary.json").read_text())


@once_on("jax")  # glue over the multitask family's code; JAX carries fewer of the once tests
def test_the_segmenter_baseline_trains_evaluates_and_predicts_masks_only(brisc_run, tmp_path):
    result = run("train", "segmenter", "--data", brisc_run / "data", "--config", brisc_run / "tiny.toml",
                 "--out", brisc_run / "segmenter")
    assert result.exit_code == 0, result.output
    assert json.loads((brisc_run / "segmenter" / "run.json").read_text())["family"] == "segmenter"
    result = run("evaluate", "--model", brisc_run / "segmenter", "--data", brisc_run / "data", "--subset", "test",
                 "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert "classes" not in summary and summary["masks"]["n"] == 3
    image = sorted((brisc_run / "data").rglob("segmentation_task/test/images/*.jpg"))[0]
    result = run("predict", "--model", brisc_run / "segmenter", "--input", image, "--out", tmp_path / "p.png")
    assert result.exit_code == 0 and "class:" not in result.output and (tmp_path / "p.png").exists()
    result = CliRunner().invoke(cli, ["explain", "--model", str(brisc_run / "segmenter"), "--input", str(image),
                                      "--out", str(tmp_path / "e.png")])
    assert result.exit_code == 1 and "class head" in result.output and not (tmp_path / "e.png").exists()


def _class_line(output):
    line = next(l for l in output.splitlines() if l.startswith("class: "))
    return {part.rsplit(" ", 1)[0]: float(part.rsplit(" ", 1)[1]) for part in line[7:].split(", ")}


@pytest.fixture(scope="module")
def served(brisc_run, tmp_path_factory):
    """The run exported by `kerasbrain export` and served on both protocols, with one local prediction
    to compare against: (server, saved_models, image, local `predict` output)."""
    from kerasbrain.export.layout import read_manifest
    from kerasbrain.serving.server import ServerOptions, build_server

    root = tmp_path_factory.mktemp("served_multitask")
    saved = root / "saved_models"
    result = run("export", "--model", brisc_run / "run", "--name", "brisc_mt", "--root", saved,
                 "--backend", keras.backend.backend())  # each backend's own graph against its own predict
    assert result.exit_code == 0, result.output
    manifest = read_manifest(saved / "brisc_mt" / "1")
    assert manifest["kind"] == "image_classification" and manifest["family"] == "multitask"
    assert manifest["outputs"] == ["class_probabilities", "class", "mask_probabilities", "mask"]
    assert manifest["image_size"] == 64 and manifest["warmup_window"] == [64, 64]
    image = sorted((brisc_run / "data" / "brisc2025" / "classification_task" / "test" / "glioma").glob("*.jpg"))[0]
    local = run("predict", "--model", brisc_run / "run", "--input", image, "--out", root / "local.png")
    assert local.exit_code == 0, local.output
    server = build_server(model_name="brisc_mt", model_base_path=saved / "brisc_mt",
                          options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0)).start()
    yield server, saved, image, local.output
    server.stop()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_exported_multitask_model_serves_what_local_prediction_gives(served, tmp_path, protocol):
    server, saved, image, local = served
    url = f"http://127.0.0.1:{server.rest_port}" if protocol == "rest" else f"grpc://127.0.0.1:{server.grpc_port}"
    remote = run("predict", "--server", url, "--model", "brisc_mt", "--saved-models", saved, "--input", image,
                 "--out", tmp_path / "remote.png")
    assert remote.exit_code == 0, remote.output
    local_p, remote_p = _class_line(local), _class_line(remote.output)
    assert local_p.keys() == remote_p.keys() and all(abs(local_p[k] - remote_p[k]) <= 2e-3 for k in local_p)
    assert (tmp_path / "remote.png").stat().st_size > 5000


def _library_heat_map(run_dir, image, method, class_name, samples=None):
    """The map each method's library function computes for one image, outside the CLI."""
    import numpy as np

    from kerasbrain.data.classes import class_index
    from kerasbrain.data.pictures import read_rgb
    from kerasbrain.data.tumour_images import prepare_image
    from kerasbrain.evaluation import explain as ex
    from kerasbrain.evaluation.explain_agnostic import lime_map, shap_map
    from kerasbrain.families import family_of_run
    from kerasbrain.families.base import InferenceOverrides

    model, size = family_of_run(run_dir).load_with_size(run_dir, InferenceOverrides())
    rgb = prepare_image(read_rgb(image), size)
    x = rgb[None].astype("float32") / 255.0
    outputs = model.predict_on_batch(x)
    index = class_index(class_name)
    if method in ("shap", "lime"):
        def predict(batch):
            return np.concatenate([model.predict_on_batch(np.asarray(batch[i:i + 32], "float32") / 255.0)["class"]
                                   for i in range(0, len(batch), 32)])
        heat = (shap_map if method == "shap" else lime_map)(predict, rgb, index, samples)
    elif method == "occlusion":
        heat = ex.occlusion_sensitivity(model, x, index)[0]
    elif method == "integrated-gradients":
        heat = ex.integrated_gradients(model, x, index)[0]
    else:
        heat = ex.explain_classes(model, x, index, method)[0][0]
    return rgb, heat, outputs["mask"][0, ..., 0], outputs["class"][0], index


# The CLI draws what the library computes: glue, once, on TensorFlow (where LIME's and SHAP's forward
# passes take half JAX's time on a CPU). Every method's map is tested on both backends in tests/evaluation.
@once
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "occlusion", "integrated-gradients", "lime", "shap"])
def test_explain_draws_the_map_the_library_computes(brisc_run, tmp_path, method):
    """The CLI's picture is, pixel for pixel, the figure of the map its method computes in-process (each
    method's map has its own known-answer test in tests/evaluation)."""
    import cv2
    import numpy as np

    from kerasbrain.evaluation.figures import save_explanation_figure

    image = sorted((brisc_run / "data" / "brisc2025" / "classification_task" / "test" / "meningioma").glob("*.jpg"))[0]
    samples = 60 if method in ("shap", "lime") else None  # the sampling methods at a fifth of their default
    result = run("explain", "--model", brisc_run / "run", "--input", image, "--method", method, "--class", "meningioma",
                 "--out", tmp_path / "e.png", *(("--samples", samples) if samples else ()))
    assert result.exit_code == 0, result.output
    assert f"{method} explains Meningioma" in result.output
    rgb, heat, mask, probabilities, index = _library_heat_map(brisc_run / "run", image, method, "meningioma", samples)
    # normalised to a peak of 1, or all 0 where a barely trained model has no positive evidence for the
    # class (Grad-CAM on JAX once); non-blank maps on known evidence: tests/evaluation/test_explain*.py
    assert heat.shape == rgb.shape[:2] and heat.min() >= 0 and (heat.max() == 0 or abs(heat.max() - 1) < 1e-6)
    save_explanation_figure(tmp_path / "expected.png", rgb, heat, mask, probabilities, index, method)
    drawn, expected = (cv2.imread(str(tmp_path / name)) for name in ("e.png", "expected.png"))
    assert drawn.shape == expected.shape
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 2, method
    bad = run("explain", "--model", brisc_run / "run", "--input", image, "--class", "astrocytoma", "--out",
              tmp_path / "f.png")
    assert bad.exit_code == 1 and "--class must be one of" in bad.output and not (tmp_path / "f.png").exists()
    if samples is None:  # only the sampling methods take a sample count
        bad = run("explain", "--model", brisc_run / "run", "--input", image, "--method", method, "--samples", 50,
                  "--out", tmp_path / "g.png")
        assert bad.exit_code == 1 and f"--samples applies to shap and lime; {method} does not sample" in bad.output
        assert not (tmp_path / "g.png").exists()
    else:
        bad = run("explain", "--model", brisc_run / "run", "--input", image, "--method", method, "--samples", 3,
                  "--out", tmp_path / "g.png")
        assert bad.exit_code == 2 and "3 is not in the range x>=10" in bad.output


@once
def test_multitask_vs_baseline_quick(brisc_run):
    out = brisc_run / "compare"
    result = run("experiment", "multitask-vs-baseline", "--data", brisc_run / "data", "--out", out, "--quick")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["model"] for r in rows] == ["ResNet supervised (single-task)", "ResNet multi-task (class + mask)"]
    from sklearn.metrics import accuracy_score, f1_score

    for row, name in zip(rows, ("classifier", "multitask")):  # each row recomputed from its per-image predictions
        images = list(csv.DictReader((out / name / "evaluation" / "images.csv").open()))
        truth, predicted = [i["true_class"] for i in images], [i["predicted_class"] for i in images]
        assert float(row["accuracy"]) == pytest.approx(accuracy_score(truth, predicted))
        assert float(row["macro_f1"]) == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    splits = [json.loads((out / name / "split.json").read_text()) for name in ("classifier", "multitask")]
    assert splits[0] == splits[1]  # the same images for both
    assert "| Model | Accuracy | Macro F1 | Macro ROC-AUC |" in (out / "results.md").read_text()
    assert (out / "training_curves.png").stat().st_size > 10_000
