import numpy as np

from kerasbrain.data.augment import AugmentConfig, augment
from kerasbrain.data.layouts import discover
from kerasbrain.data.pipeline import PatchSampler, crop_or_pad, patch_dataset
from kerasbrain.data.preprocess import cached_preprocess


def _folders(msd_dir, tmp_path):
    return [cached_preprocess(c, tmp_path) for c in discover(msd_dir).cases]


def test_crop_or_pad_pads_outside():
    image = np.arange(27, dtype=np.float32).reshape(3, 3, 3, 1)
    labels = np.ones((3, 3, 3), np.uint8)
    img, lab = crop_or_pad(image, labels, np.array([-1, 0, 1]), np.array([2, 2, 4]))
    assert img.shape == (2, 2, 4, 1)
    assert img[0].sum() == 0 and lab[0].sum() == 0  # row -1 is padding
    np.testing.assert_array_equal(img[1, :, :2, 0], image[0, :2, 1:3, 0])
    assert lab[1, :, 2:].sum() == 0  # z beyond the volume


def test_sampler_is_deterministic_and_oversamples_foreground(msd_dir, tmp_path):
    folders = _folders(msd_dir, tmp_path)
    sampler = PatchSampler(folders, (16, 16, 16), fg_fraction=1.0, seed=3)
    a, ta = sampler.sample(5)
    b, tb = sampler.sample(5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta, tb)
    # with fg_fraction=1 every patch is drawn around a tumour voxel
    assert all(sampler.sample(i)[1][..., 0].any() for i in range(10))
    assert ta.shape == (16, 16, 16, 3) and a.shape == (16, 16, 16, 4)


def test_augmentation_moves_mask_with_image():
    rng = np.random.default_rng(0)
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[2:6, 3:9, 4:7] = 2
    labels[3:5, 4:6, 5] = 3
    image = np.repeat(labels[..., None].astype(np.float32), 2, axis=-1)
    cfg = AugmentConfig(flip_prob=0.5, rotate_prob=1.0, rotate_degrees=30, scale_prob=1.0, intensity_prob=0,
                        gamma_prob=0, noise_prob=0)
    for _ in range(5):
        img, lab = augment(image, labels, rng, cfg)
        assert set(np.unique(lab)) <= {0, 2, 3}  # nearest interpolation keeps labels integer
        # where the image is clearly tumour the labels agree (image uses linear interpolation)
        np.testing.assert_array_equal(lab[img[..., 0] > 2.9], 3)
        assert (lab[img[..., 0] < 0.1] == 0).mean() > 0.95


def test_flip_only_augmentation_is_exact():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (6, 7, 8)).astype(np.uint8)
    image = labels[..., None].astype(np.float32)
    cfg = AugmentConfig(flip_prob=0.5, rotate_prob=0, scale_prob=0, intensity_prob=0, gamma_prob=0, noise_prob=0)
    for _ in range(4):
        img, lab = augment(image, labels, rng, cfg)
        np.testing.assert_array_equal(img[..., 0], lab)


def test_patch_dataset_batches(msd_dir, tmp_path):
    sampler = PatchSampler(_folders(msd_dir, tmp_path), (16, 16, 16), augment_config=AugmentConfig(), seed=0)
    ds = patch_dataset(sampler, batch_size=2, num_patches=4)
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 2
    x, y = batches[0]
    assert x.shape == (2, 16, 16, 16, 4) and x.dtype == np.float32
    assert y.shape == (2, 16, 16, 16, 3) and set(np.unique(y)) <= {0.0, 1.0}
    # regions nest: ET inside TC inside WT
    assert (y[..., 2] <= y[..., 1]).all() and (y[..., 1] <= y[..., 0]).all()
