import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from kerasbrain.data.errors import DataError
from kerasbrain.data.layouts import case_from_files, discover, load_case
from tests.conftest import TINY_SHAPE


def test_discover_msd(msd_dir):
    ds = discover(msd_dir)
    assert ds.layout == "msd"
    assert [c.case_id for c in ds.cases] == ["BRATS_001", "BRATS_002", "BRATS_003"]
    assert [c.case_id for c in ds.test_cases] == ["BRATS_004"]
    assert ds.test_cases[0].label is None
    manifest = json.loads((msd_dir / "dataset.json").read_text())
    assert manifest["modality"] == {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}


def test_discover_brats(brats2021_dir, brats2023_dir):
    ds21, ds23 = discover(brats2021_dir), discover(brats2023_dir)
    assert ds21.layout == "brats2021" and ds23.layout == "brats2023"
    assert [p.name for p in ds21.cases[0].images] == [
        "BraTS2021_00000_flair.nii.gz", "BraTS2021_00000_t1.nii.gz", "BraTS2021_00000_t1ce.nii.gz",
        "BraTS2021_00000_t2.nii.gz"]
    assert ds21.cases[0].label.name == "BraTS2021_00000_seg.nii.gz"
    assert [p.name for p in ds23.cases[0].images][0] == "BraTS-GLI-00000-000-t2f.nii.gz"


def test_every_layout_loads_to_the_same_case(msd_dir, brats2021_dir, brats2023_dir):
    """The same phantom written in three layouts gives identical internal arrays."""
    msd = load_case(discover(msd_dir).cases[0])
    b21 = load_case(discover(brats2021_dir).cases[0])
    b23 = load_case(discover(brats2023_dir).cases[0])
    assert msd.image.shape == TINY_SHAPE + (4,)
    for other in (b21, b23):
        np.testing.assert_array_equal(other.labels, msd.labels)
        np.testing.assert_allclose(other.image, msd.image)
    assert set(np.unique(msd.labels)) <= {0, 1, 2, 3}
    # the second case has every label, so each layout's numbering is checked on each of them
    for layout, root, numbers in (("msd", msd_dir, {1: 2, 2: 1, 3: 3}),
                                  ("brats2021", brats2021_dir, {1: 1, 2: 2, 3: 4}),
                                  ("brats2023", brats2023_dir, {1: 1, 2: 2, 3: 3})):
        files = discover(root).cases[1]
        internal = load_case(files).labels
        assert set(np.unique(internal)) == {0, 1, 2, 3}
        raw = np.asarray(nib.load(files.label).dataobj)
        for label, on_disk in numbers.items():  # the same voxels, counted in the file and after reading
            assert (raw == on_disk).sum() == (internal == label).sum() > 0, (layout, label)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="no dataset found.*DICOM studies or other formats: `kerasbrain data convert`"):
        discover(tmp_path)


@pytest.fixture
def brats_copy(brats2021_dir, tmp_path):
    dst = tmp_path / "brats"
    shutil.copytree(brats2021_dir, dst)
    case = discover(dst).cases[0]
    return case


def _rewrite(path, data, affine=None):
    ref = nib.load(path)
    nib.save(nib.Nifti1Image(data, ref.affine if affine is None else affine), path)


def test_mismatched_modality_shape(brats_copy):
    t2 = brats_copy.images[3]
    _rewrite(t2, np.zeros((10, 10, 10), np.float32))
    with pytest.raises(DataError, match=r"BraTS2021_00000_t2.nii.gz: shape \(10, 10, 10\)"):
        load_case(brats_copy)


def test_mismatched_affine(brats_copy):
    t1 = brats_copy.images[1]
    ref = nib.load(t1)
    _rewrite(t1, np.asarray(ref.dataobj), affine=ref.affine @ np.diag([2.0, 1, 1, 1]))
    with pytest.raises(DataError, match="BraTS2021_00000_t1.nii.gz: .*affine differ"):
        load_case(brats_copy)


def test_label_outside_convention(brats_copy):
    seg = brats_copy.label
    data = np.asarray(nib.load(seg).dataobj).copy()
    data[0, 0, 0] = 3  # BraTS 2021 has no label 3
    _rewrite(seg, data)
    with pytest.raises(DataError, match=r"_seg.nii.gz: label values \[3\]"):
        load_case(brats_copy)


def test_nan_voxels(brats_copy):
    flair = brats_copy.images[0]
    data = np.asarray(nib.load(flair).dataobj).astype(np.float32)
    data[1, 2, 3] = np.nan
    _rewrite(flair, data)
    with pytest.raises(DataError, match="_flair.nii.gz: contains 1 NaN/Inf voxels"):
        load_case(brats_copy)


def test_wrong_dimensionality(brats_copy):
    _rewrite(brats_copy.images[2], np.zeros(TINY_SHAPE + (2,), np.float32))
    with pytest.raises(DataError, match="_t1ce.nii.gz: expected a 3-D volume"):
        load_case(brats_copy)


def test_truncated_file(brats_copy):
    flair = brats_copy.images[0]
    raw = flair.read_bytes()
    flair.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="_flair.nii.gz: cannot be read as NIfTI"):
        load_case(brats_copy)


def test_not_gzip(brats_copy):
    brats_copy.label.write_bytes(b"not a nifti at all")
    with pytest.raises(DataError, match="_seg.nii.gz: cannot be read"):
        load_case(brats_copy)


def test_missing_modality(brats2021_dir, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(brats2021_dir, dst)
    (dst / "BraTS2021_00001" / "BraTS2021_00001_t1ce.nii.gz").unlink()
    with pytest.raises(DataError, match="BraTS2021_00001: case is missing BraTS2021_00001_t1ce.nii.gz"):
        discover(dst)


def test_case_from_files(msd_dir, brats2021_dir):
    one = case_from_files([msd_dir / "imagesTs" / "BRATS_004.nii.gz"])
    assert one.case_id == "BRATS_004" and len(one.images) == 1
    folder = case_from_files([brats2021_dir / "BraTS2021_00001"])
    assert folder.layout == "brats2021" and folder.label is not None
    with pytest.raises(DataError, match="expected one 4-D NIfTI or four"):
        case_from_files([msd_dir / "dataset.json"] * 2)

