"""The web app's work without a browser: uploads, runs equal to the CLI's, views, volumes, report, folders."""

import gzip
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.app import handlers, views
from kerasbrain.app.catalogue import find_local_models
from kerasbrain.app.report import write_report
from kerasbrain.data.labels import region_volumes_ml
from tests.conftest import once

# The app's glue around `predict_case`, the families and the serving client, all tested on both backends
# elsewhere: once.
pytestmark = once


def run_cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def brisc_images(tmp_path_factory):
    from kerasbrain.data.phantom_classes import write_brisc

    root = write_brisc(tmp_path_factory.mktemp("brisc"), per_class=2, seed=3)
    return sorted(root.rglob("segmentation_task/test/images/*.jpg"))


def model_of(run_dir):
    models = find_local_models(run_dir.parent)
    return next(m for m in models if m.ref == str(run_dir / "best.keras"))


# --- uploads ---------------------------------------------------------------------------------------
def test_uploads_the_model_cannot_use_are_refused_with_one_line(tmp_path, msd_dir):
    volume = next((msd_dir / "imagesTr").glob("*.nii.gz"))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    picture = tmp_path / "slice.png"
    picture.write_bytes(b"\x89PNG not really")
    cases = [
        ([], "Upload a file first"),
        ([empty], "empty.png: the file is empty"),
        ([text], "notes.txt: not a picture"),
        ([picture, volume], "not both"),
        ([volume], "this model takes one PNG/JPEG/TIFF picture"),
        ([picture, picture], "takes one picture; 2 were uploaded"),
    ]
    for uploads, message in cases:
        with pytest.raises(handlers.UploadError, match=message):
            handlers.check_upload(uploads, "image")
    with pytest.raises(handlers.UploadError, match="this model takes a DICOM study .*; or NIfTI volumes"):
        handlers.check_upload([picture], "volume")
    with pytest.raises(handlers.UploadError, match="3 files were uploaded"):
        handlers.check_upload([volume] * 3, "volume")
    with pytest.raises(handlers.UploadError, match="over this app's limit of 0.001 MB"):
        handlers.check_upload([volume], "volume", max_mb=0.001)
    assert handlers.check_upload([volume], "volume") == (volume,)


def test_the_four_brats_modalities_are_put_in_order_whatever_the_upload_order(tmp_path, brats2021_dir):
    case = sorted(p for p in brats2021_dir.iterdir() if p.is_dir())[0]
    files = [f for f in case.glob("*.nii.gz") if not f.name.endswith("_seg.nii.gz")]
    random.Random(0).shuffle(files)
    ordered = handlers.check_upload(files, "volume")
    assert [p.name.split("_")[-1] for p in ordered] == ["flair.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz"]
    unnamed = [tmp_path / f"modality{i}.nii.gz" for i in range(4)]
    for source, target in zip(files, unnamed):
        shutil.copyfile(source, target)
    with pytest.raises(handlers.UploadError, match="cannot tell the four modalities apart"):
        handlers.check_upload(unnamed, "volume")


# --- runs equal the CLI's ----------------------------------------------------------------------------
def test_a_volume_run_writes_the_clis_label_map_byte_for_byte(tmp_path, msd_dir, volume_run):
    case = next((msd_dir / "imagesTs").glob("*.nii.gz"))
    cli_out = tmp_path / "cli" / "case_seg.nii.gz"
    run_cli("predict", "--model", volume_run / "best.keras", "--input", case, "--out", cli_out)
    messages = []
    result = handlers.run_model(model_of(volume_run), [case], tmp_path / "app",
                                progress=lambda fraction, message: messages.append((fraction, message)))
    p = result.prediction
    assert p.mask.read_bytes() == cli_out.read_bytes()
    assert p.figure.is_file() and result.kind == "volume"
    assert p.image.shape[:3] == p.labels.shape and p.image.shape[3] == 4
    assert p.region_volumes_ml == pytest.approx(region_volumes_ml(p.labels, p.spacing))
    assert any(f == 1.0 for f, _ in messages), messages  # the windows' progress reached the page
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        report = write_report(result, tmp_path / f"report{suffix}")
        assert report.read_bytes()[:4] == magic
    # the lesions the page lists are the CLI's report's, and choosing one shows its slice
    import json

    cli_report = json.loads((tmp_path / "cli" / "case_seg_report.json").read_text())
    assert p.report["lesions"] == cli_report["lesions"]
    choices = views.lesion_choices(p.report)
    assert len(choices) == sum(cli_report["lesion_counts"].values())
    for lesion in cli_report["lesions"]:
        z = views.lesion_slice(p.report, views.lesion_label(lesion))
        assert p.labels[..., z].any()  # the slice shown has tumour on it


def test_brats_modalities_uploaded_in_any_order_predict_as_the_cli_with_them_in_order(tmp_path, brats2021_dir,
                                                                                       volume_run):
    case = sorted(p for p in brats2021_dir.iterdir() if p.is_dir())[1]
    ordered = [next(case.glob(f"*_{m}.nii.gz")) for m in ("flair", "t1", "t1ce", "t2")]
    cli_out = tmp_path / "cli.nii.gz"
    run_cli("predict", "--model", volume_run, *[a for f in ordered for a in ("--input", f)], "--out", cli_out)
    result = handlers.run_model(model_of(volume_run), ordered[::-1], tmp_path / "app")
    assert gzip.decompress(result.prediction.mask.read_bytes()) == gzip.decompress(cli_out.read_bytes())
    assert result.prediction.mask.name == f"{case.name}_seg.nii.gz"


def test_a_zipped_dicom_study_gives_the_clis_segmentation(tmp_path, volume_run):
    """Upload a DICOM study as a zip: the app's SEG holds the CLI's label map; the viewer gets the volume."""
    import shutil

    import highdicom as hd

    from kerasbrain.data.dicom.synth import write_dicom_dataset

    data = write_dicom_dataset(tmp_path / "data", cases=1, shape=(41, 38, 35), seed=9)
    study = data / "studies" / "PHANTOM_001"
    upload = Path(shutil.make_archive(str(tmp_path / "upload" / "PHANTOM_001"), "zip", study))
    cli_out = tmp_path / "cli.dcm"
    run_cli("predict", "--model", volume_run, "--input", study, "--out", cli_out)
    result = handlers.run_model(model_of(volume_run), [upload], tmp_path / "app")
    assert result.prediction.mask.name == "PHANTOM_001_seg.dcm" and result.kind == "volume"
    app_seg, cli_seg = hd.seg.segread(result.prediction.mask), hd.seg.segread(cli_out)
    uids = [s.SOPInstanceUID for s in sorted(
        (pydicom.dcmread(f, stop_before_pixels=True) for f in (study / "series3").iterdir()),
        key=lambda d: float(d.ImagePositionPatient[2]))]
    pixels = [s.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
              for s in (app_seg, cli_seg)]
    np.testing.assert_array_equal(pixels[0], pixels[1])
    assert pixels[0].any()
    assert result.prediction.image.shape == (41, 38, 35, 4)  # what the viewer shows, canonical
    assert result.prediction.labels.shape == (41, 38, 35)


def test_a_picture_run_gives_the_clis_mask_class_probabilities_and_a_grad_cam(tmp_path, brisc_images,
                                                                              multitask_run):
    image = brisc_images[0]
    cli_figure = tmp_path / "cli" / "figure.png"
    output = run_cli("predict", "--model", multitask_run, "--input", image, "--out", cli_figure)
    result = handlers.run_model(model_of(multitask_run), [image], tmp_path / "app")
    p = result.prediction
    assert p.mask.read_bytes() == (tmp_path / "cli" / "figure_mask.png").read_bytes()
    assert p.labels.shape == p.image.shape[:2]
    assert sum(p.class_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    best = max(p.class_probabilities, key=p.class_probabilities.get)
    assert f"class: {best} {p.class_probabilities[best]:.3f}" in output
    cli_gradcam = tmp_path / "cli" / "gradcam.png"  # the app's Grad-CAM is `kerasbrain explain`'s, byte for byte
    run_cli("explain", "--model", multitask_run, "--input", image, "--out", cli_gradcam)
    assert result.explanation.read_bytes() == cli_gradcam.read_bytes()
    assert write_report(result, tmp_path / "report.png").stat().st_size > 10_000


def test_a_broken_volume_fails_with_a_line_naming_the_file(tmp_path, msd_dir, volume_run):
    case = next((msd_dir / "imagesTs").glob("*.nii.gz"))
    broken = tmp_path / "truncated.nii.gz"
    broken.write_bytes(case.read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.nii.gz: cannot be read as NIfTI"):
        handlers.run_model(model_of(volume_run), [broken], tmp_path / "app")


# --- models offered ------------------------------------------------------------------------------
def test_the_catalogue_offers_runs_through_the_family_registry_and_skips_junk(tmp_path, volume_run, multitask_run):
    shutil.copytree(volume_run, tmp_path / "runs" / "brain3d")
    shutil.copytree(multitask_run, tmp_path / "runs" / "nested" / "brisc")
    shutil.copyfile(multitask_run / "best.keras", tmp_path / "runs" / "nested" / "brisc" / "calibrated.keras")
    shutil.copyfile(volume_run / "best.keras", tmp_path / "runs" / "bare.keras")
    (tmp_path / "runs" / "junk.keras").write_bytes(b"not a zip")
    ensemble = tmp_path / "runs" / "best_of_cv"  # what `kerasbrain crossval` writes
    ensemble.mkdir()
    shutil.copyfile(volume_run / "run.json", ensemble / "run.json")
    shutil.copyfile(volume_run / "config.json", ensemble / "config.json")
    (ensemble / "ensemble.json").write_text(json.dumps({"kind": "kerasbrain-ensemble", "members": [
        {"model": str(volume_run / "best.keras"), "weight": 1.0}]}))
    warnings = []
    models = find_local_models(tmp_path / "runs", warn=warnings.append)
    assert {m.label: m.input_kind for m in models} == {
        "brain3d (unet3d)": "volume", "bare.keras (unet3d)": "volume",
        "nested/brisc (multitask calibrated)": "image", "best_of_cv (unet3d ensemble)": "volume"}
    assert next(m for m in models if "brisc" in m.label).ref.endswith("calibrated.keras")
    assert len(warnings) == 1 and "junk.keras: skipped" in warnings[0]
    assert find_local_models(tmp_path / "missing") == []


# --- views ---------------------------------------------------------------------------------------
def test_views_show_the_right_anatomy_at_true_aspect_ratio():
    image = np.zeros((10, 20, 30, 4), np.float32)
    image[..., 0] = np.arange(10)[:, None, None] + 1  # a gradient along x (towards the patient's right)
    labels = np.zeros((10, 20, 30), np.uint8)
    labels[8, 15, 5] = 3  # right, anterior, inferior: enhancing
    axial = views.render_view(image, labels, "axial", 5, shown=(3,), opacity=1.0, spacing=(1, 1, 1), height=20)
    assert axial.shape == (20, 10, 3)
    rows, cols = np.nonzero((axial == views.LABEL_STYLE[3][1]).all(-1))
    assert (rows.tolist(), cols.tolist()) == ([4], [1])  # anterior is up, the patient's right on the left
    coronal = views.render_view(image, labels, "coronal", 15, shown=(3,), opacity=1.0, spacing=(1, 1, 1), height=30)
    rows, cols = np.nonzero((coronal == views.LABEL_STYLE[3][1]).all(-1))
    assert (rows.tolist(), cols.tolist()) == ([24], [1])  # inferior is down
    hidden = views.render_view(image, labels, "axial", 5, shown=(1, 2), opacity=1.0, spacing=(1, 1, 1), height=20)
    assert not (hidden == views.LABEL_STYLE[3][1]).all(-1).any()
    sagittal = views.render_view(image, labels, "sagittal", 8, spacing=(1, 1, 3), height=90)
    assert sagittal.shape == (90, 20, 3)  # 30 slices of 3 mm against 20 rows of 1 mm
    assert views.slice_count(image.shape, "coronal") == 20


def test_a_chosen_lesion_opens_at_its_rano_slice_or_its_centre():
    report = {"lesion_counts": {"WT": 1, "TC": 0, "ET": 1}, "rano_sum_of_products_mm2": 600.0,
              "measurable_enhancing_lesions": 1,
              "lesions": [{"region": "WT", "lesion": 1, "volume_ml": 12.5, "centre_voxel": [40.0, 41.0, 30.4]},
                          {"region": "ET", "lesion": 1, "volume_ml": 2.25, "centre_voxel": [40.0, 41.0, 28.0],
                           "rano": {"longest_mm": 30.0, "perpendicular_mm": 20.0, "product_mm2": 600.0,
                                    "slice": 33, "measurable": True}, "mean_probability": 0.91}]}
    assert views.lesion_choices(report) == ["ET 1: 2.25 mL, 30 x 20 mm, p 0.91", "WT 1: 12.50 mL"]
    assert views.lesion_slice(report, "ET 1: 2.25 mL, 30 x 20 mm, p 0.91") == 33
    assert views.lesion_slice(report, "WT 1: 12.50 mL") == 30
    assert views.lesion_slice(report, "nothing") is None and views.lesion_choices(None) == []
    assert views.lesion_lines(report)[-1] == "  RANO sum of products: 600 mm^2 (1 measurable enhancing lesions)"


def test_region_volumes_count_each_region_in_millilitres():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[:2] = 2  # 200 voxels edema
    labels[2, :5] = 1  # 50 necrotic
    labels[3, :3] = 3  # 30 enhancing
    assert region_volumes_ml(labels, (1.0, 2.0, 0.5)) == pytest.approx({"WT": 0.28, "TC": 0.08, "ET": 0.03})
    assert "| whole tumour (WT) | 0.28 |" in views.volumes_table({"WT": 0.28})


# --- folders -------------------------------------------------------------------------------------
def test_each_session_works_in_its_own_folder_and_leaves_nothing(tmp_path):
    workspace = handlers.Workspace(tmp_path / "ws")
    a1, b1 = workspace.new_run("alice"), workspace.new_run("bob")
    (a1 / "mask.nii.gz").write_bytes(b"a")
    a2 = workspace.new_run("alice")
    assert a1.parent != b1.parent and not a1.exists() and a2.is_dir() and b1.is_dir()
    workspace.release("alice")
    assert not a2.parent.exists() and b1.is_dir()
    assert workspace.new_run("../../etc").parent.parent == workspace.root
    workspace.close()
    assert not (tmp_path / "ws").exists()


def test_progress_lines_become_fractions():
    assert handlers.fraction_of("case_1: window 3/12") == 0.25
    assert handlers.fraction_of("Grad-CAM") is None


def test_with_a_server_the_catalogue_offers_the_exported_models(tmp_path, volume_run):
    from kerasbrain.app.catalogue import find_served_models
    from kerasbrain.families import get_family

    get_family("unet3d").export(volume_run / "best.keras", "brain", tmp_path / "saved_models", 1, warmup=False)
    (tmp_path / "saved_models" / "empty").mkdir()
    warnings = []
    models = find_served_models("grpc://127.0.0.1:8500", tmp_path / "saved_models", warn=warnings.append)
    assert [(m.label, m.ref, m.server, m.input_kind) for m in models] == [
        ("brain (unet3d, served)", "brain", "grpc://127.0.0.1:8500", "volume")]
    assert len(warnings) == 1 and "empty: skipped" in warnings[0]
