import shutil

import cv2
import numpy as np
import pytest

from kerasbrain.data.errors import DataError
from kerasbrain.data.lgg import discover_lgg, has_tumour, patient_split, read_slice
from kerasbrain.data.phantom import write_lgg
from kerasbrain.data.slices import SliceAugment, load_slices, median_clahe, slice_dataset


@pytest.fixture(scope="session")
def lgg_dir(tmp_path_factory):
    return write_lgg(tmp_path_factory.mktemp("lgg"), patients=6, slices=5, shape=(64, 64), seed=1)


def test_discover_and_read(lgg_dir):
    slices = discover_lgg(lgg_dir.parent)  # the parent of kaggle_3m works too
    assert len(slices) == 30 and len({s.patient for s in slices}) == 6
    assert [s.index for s in slices[:5]] == [1, 2, 3, 4, 5]
    image, mask = read_slice(slices[2])
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    # channel order is the file's (pre-contrast, FLAIR, post-contrast), not OpenCV's BGR
    bgr = cv2.imread(str(slices[2].image))
    np.testing.assert_array_equal(image, bgr[..., ::-1])


@pytest.fixture
def lgg_copy(lgg_dir, tmp_path):
    dst = tmp_path / "kaggle_3m"
    shutil.copytree(lgg_dir, dst)
    return dst


def test_bad_files_are_named(lgg_copy):
    slices = discover_lgg(lgg_copy)
    slices[0].image.write_bytes(b"not a tiff")
    with pytest.raises(DataError, match=r"_1.tif: not a TIFF, PNG or JPEG picture"):
        read_slice(slices[0])
    cv2.imwrite(str(slices[1].mask), np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match=r"_2_mask.tif: mask is 32x32 but its image is 64x64"):
        read_slice(slices[1])
    cv2.imwrite(str(slices[2].mask), np.full((64, 64), 128, np.uint8))
    with pytest.raises(DataError, match=r"_3_mask.tif: mask is not binary"):
        read_slice(slices[2])
    slices[3].mask.unlink()
    with pytest.raises(DataError, match=r"_4.tif: has no mask"):
        discover_lgg(lgg_copy)


def test_patient_split_never_shares_a_patient(lgg_dir):
    slices = discover_lgg(lgg_dir)
    split = patient_split(slices, n_splits=3, fold=0, test_fold=1, seed=0)
    subsets = [set(split[k]) for k in ("train", "validation", "test")]
    assert all(subsets) and not (subsets[0] & subsets[1]) and not (subsets[0] & subsets[2]) \
        and not (subsets[1] & subsets[2])
    assert set.union(*subsets) == {s.patient for s in slices}
    assert all(isinstance(p, str) for p in split["validation"])
    assert any(has_tumour(s) for s in slices) and not all(has_tumour(s) for s in slices)
    with pytest.raises(ValueError, match="need at least n_splits=10 patients"):
        patient_split(slices, n_splits=10)


def test_median_clahe_equals_opencv():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))
    blurred = cv2.medianBlur(image, 3)
    expected = np.stack([clahe.apply(np.ascontiguousarray(blurred[..., c])) for c in range(3)], axis=-1)
    np.testing.assert_array_equal(median_clahe(image), expected)


def test_joint_augmentation_moves_the_mask_with_the_image(lgg_dir):
    slices = [s for s in discover_lgg(lgg_dir) if has_tumour(s)][:4]
    _, masks = load_slices(slices)
    images = np.repeat(masks, 3, axis=-1)  # an image that is its own mask
    ds = slice_dataset(images, masks, batch_size=4, augment=SliceAugment(elastic=True), seed=3)
    for x, y in ds.take(3):
        x, y = np.asarray(x), np.asarray(y)
        assert set(np.unique(y)) <= {0.0, 1.0}  # nearest interpolation keeps masks binary
        agree = ((x[..., :1] > 0.5) == (y > 0.5)).mean()
        assert agree > 0.99, agree
