"""`kerasbrain data convert`: DICOM studies with their SEG labels become an MSD Task01 folder whose
voxels and labels equal the studies' NIfTI twins read by SimpleITK, in the same world space."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from kerasbrain.data.convert import case_file_name
from kerasbrain.data.dicom.synth import write_dicom_dataset
from kerasbrain.data.layouts import discover


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = write_dicom_dataset(tmp_path_factory.mktemp("dicom"), cases=3, shape=(40, 36, 24), seed=3)
    # the third study arrives without its segmentation: an unlabelled case, and a name with spaces
    third = root / "studies" / "PHANTOM 003 (no seg)"
    (root / "studies" / "PHANTOM_003").rename(third)
    shutil.rmtree(third / "truth")
    return root


def ras(path):
    """An image read by SimpleITK, turned to RAS+ voxel order (its own reader, not kerasbrain's), as a
    (x, y, z[, c]) array and the world position of its first voxel."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    if image.GetDimension() == 4:  # one 3-D image per modality, each turned alike
        parts = [sitk.DICOMOrient(sitk.Extract(image, image.GetSize()[:3] + (0,), (0, 0, 0, c)), "LPI")
                 for c in range(image.GetSize()[3])]
        array = np.stack([sitk.GetArrayFromImage(p).transpose(2, 1, 0) for p in parts], axis=-1)
        return array, parts[0].GetOrigin()
    image = sitk.DICOMOrient(image, "LPI")  # SimpleITK names axes by where they point from: LPI = RAS+
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0), image.GetOrigin()


def test_dicom_studies_become_an_msd_dataset_equal_to_their_nifti_twins(studies, tmp_path):
    from cli.main import cli

    out = tmp_path / "Task01_Hospital"
    result = CliRunner().invoke(cli, ["data", "convert", str(studies / "studies"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 labelled and 1 unlabelled cases" in result.output
    dataset = discover(out)
    assert [c.case_id for c in dataset.labelled()] == ["PHANTOM_001", "PHANTOM_002"]
    assert [c.case_id for c in dataset.test_cases] == ["PHANTOM_003_no_seg"]
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["kerasbrain_sources"]["PHANTOM_003_no_seg"] == {"case": "PHANTOM 003 (no seg)", "format": "dicom"}
    for cid in ("PHANTOM_001", "PHANTOM_002"):
        image, origin = ras(out / "imagesTr" / f"{cid}.nii.gz")
        twin, twin_origin = ras(studies / "nifti" / f"{cid}.nii.gz")
        np.testing.assert_allclose(image, twin, atol=1e-3)  # DICOM stores integers; the twin the same voxels
        np.testing.assert_allclose(origin, twin_origin, atol=1e-4)
        labels, label_origin = ras(out / "labelsTr" / f"{cid}.nii.gz")
        truth, _ = ras(studies / "labels" / f"{cid}.nii.gz")
        assert np.array_equal(labels, truth) and len(np.unique(labels)) >= 3
        np.testing.assert_allclose(label_origin, twin_origin, atol=1e-4)


def test_a_broken_study_converts_nothing_and_a_used_folder_is_refused(studies, tmp_path):
    from cli.main import cli

    broken = tmp_path / "studies"
    shutil.copytree(studies / "studies", broken)
    victim = sorted(p for p in (broken / "PHANTOM_002").rglob("*") if p.is_file() and "truth" not in p.parts)[3]
    victim.write_bytes(victim.read_bytes()[:200])
    out = tmp_path / "Task01_Broken"
    result = CliRunner().invoke(cli, ["data", "convert", str(broken), "--out", str(out)])
    error = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and error.startswith("Error: PHANTOM_002: ") and "missing slices" in error
    assert not out.exists() and not list(tmp_path.glob(".Task01_Broken*"))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["data", "convert", str(studies / "studies"), "--out", str(tmp_path / "used")])
    assert result.exit_code == 1 and "not empty" in result.output


def test_case_names_are_safe_and_unique():
    taken = set()
    assert [case_file_name(n, taken) for n in ("MR 2024/03 (Head)", "MR_2024_03_Head", "mr_2024_03_head", "...")] == [
        "MR_2024_03_Head", "MR_2024_03_Head_2", "mr_2024_03_head_3", "case"]


def test_a_brats_2023_folder_converts_with_its_labels_renumbered(tmp_path):
    from kerasbrain.data.convert import convert_to_msd
    from kerasbrain.data.layouts import load_case
    from kerasbrain.data.phantom import write_dataset

    source = write_dataset(tmp_path / "brats", "brats2023", cases=2, shape=(32, 30, 20), seed=5,
                           spacings=[(0.9, 0.9, 3.0)])
    convert_to_msd(source, tmp_path / "Task01_Converted", progress=None)
    originals, converted = discover(source).labelled(), discover(tmp_path / "Task01_Converted").labelled()
    assert [c.case_id for c in converted] == [c.case_id for c in originals]
    for before, after in zip(originals, converted):
        a, b = load_case(before), load_case(after)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)  # internal numbering
        assert a.grid.spacing == pytest.approx(b.grid.spacing)
        np.testing.assert_allclose(a.grid.canonical_affine, b.grid.canonical_affine, atol=1e-5)
    # on disk, in RAS+ order: BraTS 2023's 1 necrosis, 2 edema, 3 enhancing became MSD's 2, 1, 3
    before, after = (np.asarray(nib.as_closest_canonical(nib.load(c.label)).dataobj) for c in (originals[0], converted[0]))
    assert set(np.unique(before)) == {0, 1, 2, 3}
    assert np.array_equal(after, np.array([0, 2, 1, 3])[before])


def test_the_dicom_flags_choose_the_series_as_predict_does(studies, tmp_path):
    from cli.main import cli

    out = tmp_path / "Task01_Swapped"  # T1 and T1Gd swapped by hand; the SEG stays on series 3, now "T1"
    result = CliRunner().invoke(cli, ["data", "convert", str(studies / "studies"), "--out", str(out),
                                      "--series", "T1=3", "--series", "T1Gd=2", "--reference", "T1"])
    assert result.exit_code == 0, result.output
    image, _ = ras(out / "imagesTr" / "PHANTOM_001.nii.gz")
    twin, _ = ras(studies / "nifti" / "PHANTOM_001.nii.gz")
    np.testing.assert_allclose(image[..., [0, 2, 1, 3]], twin, atol=1e-3)
    labels, _ = ras(out / "labelsTr" / "PHANTOM_001.nii.gz")
    assert np.array_equal(labels, ras(studies / "labels" / "PHANTOM_001.nii.gz")[0])
    assert "--nifti-beside" not in CliRunner().invoke(cli, ["data", "convert", "--help"]).output  # a writing flag
