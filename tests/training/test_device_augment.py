"""Augmentation inside the compiled step (issue 31) against the host path it replaces.

Known answers: for the same drawn parameters the device's patch equals SciPy's on the host (image
within float tolerance, targets exactly, every deep-supervision level), the sampler's device mode
draws the very patches and parameters of its host mode, the noise has the drawn spread, and a run
that augments on the device trains, resumes and saves the plain network.
"""

import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from kerasbrain.data.augment import AugmentConfig, apply_augmentation, device_parameters, draw_augmentation
from kerasbrain.data.labels import labels_to_regions
from kerasbrain.data.pipeline import PatchSampler, patch_dataset
from kerasbrain.training.config import config_from_dict
from kerasbrain.training.device_augment import augment_batch, resolve_augment_on

SHAPE = (20, 18, 16)
EVERYTHING = AugmentConfig(noise_prob=0, rotate_prob=1, scale_prob=1, intensity_prob=1, gamma_prob=1, blur_prob=1,
                           contrast_prob=1, low_resolution_prob=1, bias_field_prob=1)
FLIPS_ONLY = AugmentConfig(rotate_prob=0, scale_prob=0, intensity_prob=0, gamma_prob=0, noise_prob=0)
NNUNET = AugmentConfig(noise_prob=0, blur_prob=0.2, contrast_prob=0.15, low_resolution_prob=0.25,
                       bias_field_prob=0.3)


def _patch(seed):
    """A smooth two-channel image and its labels (0-3), different for every seed."""
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE + (2,)), (2, 2, 2, 0)).astype(np.float32) * 3 + seed
    labels = (ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), 2) * 4).clip(0, 3).round().astype(np.uint8)
    return image, labels


def _batched(params):
    return {k: np.stack([p[k] for p in params]) for k in params[0]}


PER_CHANNEL_GAMMA = AugmentConfig(noise_prob=0, intensity_prob=1, gamma_prob=1, gamma_per_channel=True)


@pytest.mark.parametrize("cfg", [EVERYTHING, FLIPS_ONLY, NNUNET, PER_CHANNEL_GAMMA],
                         ids=["everything", "flips", "nnunet", "per-channel gamma"])
def test_a_fixed_draw_gives_the_host_paths_patch(cfg):
    for batch in range(2):  # two batches of three different patches, each with its own draw
        items = [_patch(10 * batch + i) for i in range(3)]
        draws = [draw_augmentation(np.random.default_rng((batch, i)), cfg, 2) for i in range(3)]
        host = [apply_augmentation(img, lab, d) for (img, lab), d in zip(items, draws)]
        targets = np.stack([labels_to_regions(lab).astype(np.float32) for _, lab in items])
        # deep supervision: levels of a network that pooled (2, 2, 1) first, then (2, 2, 2)
        levels = (targets, targets[:, ::2, ::2, :], targets[:, ::4, ::4, ::2])
        images, (full, plane, quarter) = augment_batch(np.stack([img for img, _ in items]), levels,
                                                       _batched([device_parameters(d, SHAPE) for d in draws]))
        images, full, plane, quarter = (ops.convert_to_numpy(t) for t in (images, full, plane, quarter))
        for i, (img, lab) in enumerate(host):
            np.testing.assert_allclose(images[i], img, atol=2e-5 * max(1.0, float(np.abs(img).max())))
            np.testing.assert_array_equal(full[i], labels_to_regions(lab))
            np.testing.assert_array_equal(plane[i], labels_to_regions(lab)[::2, ::2, :])
            np.testing.assert_array_equal(quarter[i], labels_to_regions(lab)[::4, ::4, ::2])
        assert not np.allclose(images[0], images[1])


def test_the_samplers_device_mode_draws_the_host_modes_patches(msd_dir, tmp_path):
    from kerasbrain.data.preprocess import cached_preprocess
    from kerasbrain.data.layouts import discover

    folders = [cached_preprocess(c, tmp_path / "cache") for c in discover(msd_dir).labelled()]
    host = PatchSampler(folders, (16, 16, 16), 0.5, NNUNET, seed=3)
    device = PatchSampler(folders, (16, 16, 16), 0.5, NNUNET, seed=3, augment_on_device=True)
    batches = list(patch_dataset(device, batch_size=3, num_patches=6).as_numpy_iterator())
    assert len(batches) == 2
    for b, (x, target) in enumerate(batches):
        assert set(x) == {"image", "augment"} and x["augment"]["spatial"].shape == (3, 3, 3)
        images, targets = augment_batch(x["image"], target, x["augment"])
        for i in range(3):
            expected_image, expected_target = host.sample(3 * b + i)
            np.testing.assert_allclose(ops.convert_to_numpy(images)[i], expected_image, atol=1e-4)
            np.testing.assert_array_equal(ops.convert_to_numpy(targets)[i], expected_target)


def test_noise_has_the_drawn_spread_and_follows_its_seed():
    cfg = AugmentConfig(flip_prob=0, rotate_prob=0, scale_prob=0, intensity_prob=0, gamma_prob=0, noise_prob=1,
                        noise_std=0.1)
    image = np.stack([_patch(i)[0] for i in range(2)])
    targets = np.zeros(image.shape[:4] + (3,), np.float32)

    def noisy(seeds):
        draws = [draw_augmentation(np.random.default_rng(s), cfg, 2) for s in seeds]
        out, _ = augment_batch(image, targets, _batched([device_parameters(d, SHAPE) for d in draws]))
        return ops.convert_to_numpy(out) - image

    a, again, other = noisy([1, 2]), noisy([1, 2]), noisy([5, 6])
    np.testing.assert_array_equal(a, again)
    assert not np.allclose(a, other) and not np.allclose(a[0], a[1])
    assert abs(a.std() - 0.1) < 0.005 and abs(a.mean()) < 0.005


def test_auto_augments_on_the_host_without_a_gpu_and_a_wrong_value_is_refused():
    assert resolve_augment_on("auto") == "host"
    assert resolve_augment_on("device") == "device"
    with pytest.raises(ValueError, match="augment_on"):
        config_from_dict({"training": {"augment_on": "gpu"}})
    with pytest.raises(ValueError, match="fg_sampling"):
        config_from_dict({"training": {"fg_sampling": "lesions"}})


# Training on the device (a run, its resume and its checkpoints): tests/training/test_train_pydataset.py,
# through both input pipelines.
