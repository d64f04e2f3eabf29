"""The input-format registry: a format registered from a test file is taken by predict, predict --input
DIR and the app with nothing else edited; the built-in formats recognise what they should."""

import csv

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.data.errors import DataError
from kerasbrain.data.io import format_of, input_formats, register_input_format, unregister_input_format
from tests.conftest import once
from tests.data.toy_format import FORMAT as TOY


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def toy_format():
    register_input_format(TOY)
    yield TOY
    unregister_input_format(TOY.name)


@pytest.fixture(scope="module")
def toy_cases(tmp_path_factory, msd_dir):
    """Two MSD phantom cases saved as toy volumes with their labels, beside their NIfTI originals."""
    folder = tmp_path_factory.mktemp("toy")
    for path in sorted((msd_dir / "imagesTr").glob("*.nii.gz"))[:2]:
        image, labels = nib.load(path), nib.load(msd_dir / "labelsTr" / path.name)
        np.savez(folder / (path.name[:-7] + ".toyvol.npz"), image=np.asarray(image.dataobj), affine=image.affine,
                 labels=np.asarray(labels.dataobj))
    return folder


@once
def test_built_in_formats_recognise_their_inputs(msd_dir, brats2021_dir, tmp_path):
    volume = next((msd_dir / "imagesTr").glob("*.nii.gz"))
    assert format_of([volume], "volume").name == "nifti"
    case = sorted(p for p in brats2021_dir.iterdir() if p.is_dir())[0]
    assert format_of([case], "volume").name == "nifti"  # a BraTS case folder
    assert [f.name for f in input_formats("volume")][:2] == ["dicom", "nifti"]
    with pytest.raises(DataError, match=r"not an input this model takes \(a DICOM study .*; NIfTI volumes"):
        format_of([tmp_path], "volume")


@once  # the format registry's plumbing (predicting a 3-D case costs TensorFlow ~4 s, JAX ~7 s on this CPU)
def test_a_format_registered_from_a_test_file_works_in_predict_folders_and_the_app(toy_format, toy_cases, msd_dir,
                                                                                   volume_run, tmp_path):
    from kerasbrain.app import handlers
    from kerasbrain.app.catalogue import find_local_models

    case = toy_cases / "BRATS_001.toyvol.npz"
    result = run("predict", "--model", volume_run, "--input", case, "--out", tmp_path / "one.toyseg.npz")
    assert result.exit_code == 0, result.output
    result = run("predict", "--model", volume_run, "--input", msd_dir / "imagesTr" / "BRATS_001.nii.gz",
                 "--out", tmp_path / "one.nii.gz")
    assert result.exit_code == 0, result.output
    from kerasbrain.data.labels import to_internal

    expected = to_internal(np.asarray(nib.load(tmp_path / "one.nii.gz").dataobj), "msd")  # the toy writes ours
    with np.load(tmp_path / "one.toyseg.npz") as written:  # the same case, the same label map, in its voxel order
        np.testing.assert_array_equal(written["labels"], expected)
    assert 0 < (expected > 0).sum() < expected.size
    assert (tmp_path / "one.png").is_file()  # the picture is named from the format's stem

    result = run("predict", "--model", volume_run, "--input", toy_cases, "--out", tmp_path / "folder")
    assert result.exit_code == 0, result.output
    assert "2 of 2 cases predicted" in result.output
    with np.load(tmp_path / "folder" / "BRATS_001_seg.toyseg.npz") as written:
        np.testing.assert_array_equal(written["labels"], expected)

    # evaluate scores the toy cases as it scores the same cases of the MSD dataset
    result = run("evaluate", "--model", volume_run, "--data", toy_cases, "--out", tmp_path / "eval_toy")
    assert result.exit_code == 0, result.output
    result = run("evaluate", "--model", volume_run, "--data", msd_dir, "--out", tmp_path / "eval_msd")
    assert result.exit_code == 0, result.output
    toy_rows = list(csv.DictReader((tmp_path / "eval_toy" / "cases.csv").open()))
    msd_rows = {r["case_id"]: r for r in csv.DictReader((tmp_path / "eval_msd" / "cases.csv").open())}
    assert [r["case_id"] for r in toy_rows] == ["BRATS_001", "BRATS_002"]
    for row in toy_rows:
        assert row == msd_rows[row["case_id"]]
    assert float(toy_rows[0]["dice_WT"]) > 0  # a score with something to get wrong

    model = next(m for m in find_local_models(volume_run.parent) if m.ref == str(volume_run / "best.keras"))
    app = handlers.run_model(model, [case], tmp_path / "app")
    assert app.prediction.mask.name == "BRATS_001_seg.toyseg.npz"
    with np.load(app.prediction.mask) as written:
        np.testing.assert_array_equal(written["labels"], expected)


def test_a_pictures_folder_lists_slices_not_the_masks_beside_them(tmp_path):
    from kerasbrain.data.io import list_cases

    for name in ("P_1.tif", "P_1_mask.tif", "P_2.tif", "P_2_mask.tif", "lone_mask.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    # a mask beside its slice is that slice's label; a picture merely named *_mask is a case
    assert [(name, [p.name for p in inputs]) for name, inputs, _ in list_cases(tmp_path, "image")] == [
        ("P_1", ["P_1.tif"]), ("P_2", ["P_2.tif"]), ("lone_mask", ["lone_mask.png"])]
