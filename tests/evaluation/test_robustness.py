"""MRI corruptions: severity 0 is the identity, severity grows the damage, seeds reproduce."""

import numpy as np
import pytest

from kerasbrain.evaluation.robustness import CORRUPTIONS, corrupt_grey, corrupt_images, robustness_table


def _slice():
    y, x = np.mgrid[-1:1:64j, -1:1:64j]
    head = ((x / 0.8) ** 2 + (y / 0.9) ** 2 < 1).astype(np.float32)
    return head * (0.5 + 0.3 * np.cos(3 * x)) + 0.2 * ((x - 0.2) ** 2 + y ** 2 < 0.05)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_severity_zero_is_the_identity_and_damage_grows(corruption):
    grey = _slice()
    np.testing.assert_array_equal(corrupt_grey(grey, corruption, 0), grey)
    errors = [np.abs(corrupt_grey(grey, corruption, s, seed=3) - grey).mean() for s in range(1, 6)]
    assert errors[0] > 0 and all(b > a for a, b in zip(errors, errors[1:])), errors
    np.testing.assert_array_equal(corrupt_grey(grey, corruption, 3, seed=3), corrupt_grey(grey, corruption, 3, seed=3))
    out = corrupt_grey(grey, corruption, 5)
    assert out.shape == grey.shape and out.min() >= 0 and out.max() <= 1


def test_motion_and_ghosting_move_signal_outside_the_head():
    grey = _slice()
    outside = grey == 0
    for corruption in ("motion", "ghosting"):
        assert corrupt_grey(grey, corruption, 4, seed=1)[outside].mean() > 0.005


def test_images_are_corrupted_per_image_and_stay_grey_rgb():
    grey = (np.stack([_slice(), _slice()[::-1]]) * 255).astype(np.uint8)
    images = np.repeat(grey[..., None], 3, axis=-1)
    assert corrupt_images(images, "motion", 0) is images
    out = corrupt_images(images, "gaussian_noise", 2, seed=1)
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert (out[..., 0] == out[..., 2]).all() and not (out[0] == images[0]).all()


def test_bad_arguments_and_the_table():
    with pytest.raises(ValueError, match="corruption must be one of"):
        corrupt_grey(_slice(), "zoom", 1)
    with pytest.raises(ValueError, match="severity must be one of"):
        corrupt_grey(_slice(), "blur", 6)
    rows = [{"corruption": "blur", "severity": s, "accuracy": 1 - s / 10} for s in (0, 1)]
    assert "| blur | 1.0000 | 0.9000 |" in robustness_table(rows)
