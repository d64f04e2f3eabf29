import numpy as np
import pytest

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


def _cached_case(folder, labels):
    """A cache folder as `cached_preprocess` writes it, around hand-made labels."""
    import json

    folder.mkdir(parents=True)
    np.save(folder / "image.npy", np.ones(labels.shape + (4,), np.float32))
    np.save(folder / "labels.npy", labels)
    np.save(folder / "foreground.npy", np.argwhere(labels > 0).astype(np.int32))
    (folder / "meta.json").write_text(json.dumps({"case_id": folder.name, "bbox": [[0, s] for s in labels.shape],
                                                  "full_shape": list(labels.shape), "zoom": [1, 1, 1]}))
    return folder


@pytest.mark.parametrize("targets, share", [("regions", 2 / 3), ("labels", 1 / 2)])
def test_class_sampling_centres_a_tiny_core_as_often_as_the_edema_around_it(tmp_path, targets, share):
    """A slab of edema (65,536 voxels) and 8 enhancing voxels far from it. Drawing any tumour voxel
    almost never centres a patch on the enhancing cube; nnU-Net's draw (a channel the case holds,
    then one of its voxels) does so for TC and ET (2 of the 3 regions) or ET (1 of seed 003's 2 held
    labels): the share of 16^3 patches that hold it."""
    from kerasbrain.data.labels import EDEMA, ENHANCING

    labels = np.zeros((64, 64, 64), np.uint8)
    labels[:16] = EDEMA
    labels[56:58, 56:58, 56:58] = ENHANCING
    folders = [_cached_case(tmp_path / f"case{k}", labels) for k in range(2)]
    et = 2  # the ET channel in both target kinds
    found = {}
    for mode in ("voxels", "classes"):
        sampler = PatchSampler(folders, (16, 16, 16), fg_fraction=1.0, seed=1, targets=targets, fg_sampling=mode)
        patches = [sampler.sample(i)[1] for i in range(600)]
        found[mode] = np.mean([p[..., et].any() for p in patches])
        assert all(p.any() for p in patches)  # every patch holds tumour
    assert found["voxels"] < 0.01, found
    assert abs(found["classes"] - share) < 0.07, found
    with pytest.raises(ValueError, match="fg_sampling must be one of voxels, classes"):
        PatchSampler(folders, (16, 16, 16), fg_sampling="lesions")


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


ONLY = dict(flip_prob=0, rotate_prob=0, scale_prob=0, intensity_prob=0, gamma_prob=0, noise_prob=0)


def _noisy_patch(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(1.0, 0.3, (20, 18, 16, 2)).astype(np.float32)
    labels = rng.integers(0, 4, (20, 18, 16)).astype(np.uint8)
    return image, labels


@pytest.mark.parametrize("name, options", [
    ("blur", dict(blur_prob=1.0)), ("contrast", dict(contrast_prob=1.0, contrast_range=(0.5, 0.5))),
    ("low resolution", dict(low_resolution_prob=1.0, low_resolution_zoom=(0.5, 0.5))),
    ("bias field", dict(bias_field_prob=1.0)),
])
def test_nnunets_intensity_transforms_keep_labels_and_shape_and_do_what_they_say(name, options):
    image, labels = _noisy_patch()
    cfg = AugmentConfig(**ONLY, **options)
    out, lab = augment(image, labels, np.random.default_rng(3), cfg)
    again, _ = augment(image, labels, np.random.default_rng(3), cfg)
    np.testing.assert_array_equal(out, again)  # seeded
    np.testing.assert_array_equal(lab, labels)  # intensity only
    assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    roughness = lambda x: float(np.abs(np.diff(x, axis=0)).mean())  # noqa: E731
    if name in ("blur", "low resolution"):  # both remove fine detail
        assert roughness(out) < 0.7 * roughness(image), name
    if name == "contrast":  # half the contrast about each channel's mean
        np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 0.5 * image.std(axis=(0, 1, 2)), rtol=1e-4)
        np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), image.mean(axis=(0, 1, 2)), rtol=1e-4)
    if name == "bias field":  # multiplicative, smooth, within exp(+-strength)
        ratio = out / image
        np.testing.assert_allclose(ratio[..., 0], ratio[..., 1], rtol=1e-5)
        assert np.exp(-0.3) - 1e-5 <= ratio.min() and ratio.max() <= np.exp(0.3) + 1e-5 and ratio.std() > 0.01


@pytest.mark.parametrize("per_channel", [False, True])
def test_gamma_is_one_per_patch_or_one_per_channel(per_channel):
    """Each channel rescaled to [0, 1], raised to its gamma, mapped back: the same gamma for every
    channel, or (nnU-Net's unsynchronised draw) one each, so the sequences' contrasts move apart."""
    from kerasbrain.data.augment import apply_augmentation, draw_augmentation

    image, labels = _noisy_patch(1)
    cfg = AugmentConfig(**{**ONLY, "gamma_prob": 1.0}, gamma_range=(0.5, 2.0), gamma_per_channel=per_channel)
    for seed in range(3):
        draw = draw_augmentation(np.random.default_rng(seed), cfg, 2)
        assert draw.gamma.shape == (2,) and ((0.5 <= draw.gamma) & (draw.gamma <= 2.0)).all()
        assert (draw.gamma[0] != draw.gamma[1]) == per_channel
        out, lab = apply_augmentation(image, labels, draw)
        for c in range(2):
            x = image[..., c].astype(np.float64)
            lo, hi = x.min(), x.max()
            expected = ((x - lo) / (hi - lo)) ** draw.gamma[c] * (hi - lo) + lo
            np.testing.assert_allclose(out[..., c], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(lab, labels)


def test_the_new_transforms_off_leave_default_augmentation_as_before():
    """Off (the default), they draw nothing: four patches augmented with the default config are the
    bytes they were before the transforms existed (digest taken then)."""
    import hashlib

    image, labels = _noisy_patch(0)
    rng = np.random.default_rng(5)
    outs = [augment(image, labels, rng, AugmentConfig()) for _ in range(4)]
    digest = hashlib.sha256(b"".join(o[0].tobytes() + o[1].tobytes() for o in outs)).hexdigest()[:16]
    assert digest == "530498da7eef5ad6"
