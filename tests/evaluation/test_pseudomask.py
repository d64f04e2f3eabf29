"""Grad-CAM pseudo-masks: thresholding by hand, the head mask, and a dataset the multitask family reads."""

import numpy as np
import pytest

from kerasbrain.data.tumour_images import ImageSample
from kerasbrain.evaluation.pseudomask import (PseudoMaskSettings, brisc_stem, head_mask, largest_components,
                                              threshold_map)


def _blobs():
    y, x = np.mgrid[:64, :64]
    big = np.exp(-((y - 20) ** 2 + (x - 20) ** 2) / (2 * 5.0 ** 2))
    small = 0.8 * np.exp(-((y - 46) ** 2 + (x - 46) ** 2) / (2 * 2.5 ** 2))
    return (big + small).astype(np.float32)


def test_threshold_keeps_the_largest_evidence_inside_the_head():
    heat, head = _blobs(), np.ones((64, 64), bool)
    otsu = threshold_map(heat, head, PseudoMaskSettings())
    assert otsu[20, 20] and not otsu[46, 46] and not otsu[0, 0]
    both = threshold_map(heat, head, PseudoMaskSettings(components=2))
    assert both[20, 20] and both[46, 46]
    top = threshold_map(heat, head, PseudoMaskSettings(threshold="percentile", percentile=97, components=2))
    assert 0.02 * 64 * 64 <= top.sum() <= 0.031 * 64 * 64  # the top 3 % of the map
    outside = head.copy()
    outside[:32] = False  # the big blob is outside the head now
    assert not threshold_map(heat, outside, PseudoMaskSettings())[:32].any()
    assert not threshold_map(np.zeros((8, 8)), np.ones((8, 8), bool), PseudoMaskSettings()).any()


def test_largest_components_by_area():
    m = np.zeros((10, 10), bool)
    m[0:2, 0:2] = True  # 4 pixels
    m[5:9, 5:9] = True  # 16 pixels
    np.testing.assert_array_equal(largest_components(m, 1), np.pad(np.ones((4, 4), bool), ((5, 1), (5, 1))))
    np.testing.assert_array_equal(largest_components(m, 2), m)


def test_head_mask_fills_dark_structures_and_leaves_the_background():
    y, x = np.mgrid[:64, :64]
    grey = np.where((y - 32) ** 2 / 26 ** 2 + (x - 32) ** 2 / 22 ** 2 < 1, 150, 0).astype(np.uint8)
    grey[28:36, 28:36] = 0  # a dark ventricle inside
    head = head_mask(np.repeat(grey[..., None], 3, axis=-1))
    assert head[32, 32] and head[32, 15] and not head[1, 1] and not head[32, 2]
    assert not head_mask(np.zeros((16, 16, 3), np.uint8)).any()


def test_file_stems_carry_the_brisc_class_code():
    kaggle = ImageSample("Training/glioma/Tr-gl_0010", None, 0, None, "train")
    assert brisc_stem(kaggle, 0) == "Training_glioma_Tr-gl_0010_gl"
    brisc = ImageSample("brisc2025_train_00010_me_ax_t1", None, 1, None, "train")
    assert brisc_stem(brisc, 1) == "brisc2025_train_00010_me_ax_t1"
    with pytest.raises(ValueError, match="threshold must be"):
        PseudoMaskSettings(threshold="mean")


def test_the_written_dataset_is_read_back_by_the_brisc_reader(tmp_path):
    import keras

    from kerasbrain.data.phantom_classes import write_brisc
    from kerasbrain.data.pictures import read_rgb
    from kerasbrain.data.tumour_images import discover_tumour_images, read_binary_mask
    from kerasbrain.evaluation.pseudomask import write_pseudomask_dataset
    from kerasbrain.models.multitask import MultiTaskNet

    source = write_brisc(tmp_path / "src", per_class=2, seed=3)
    samples = discover_tumour_images(source)
    keras.utils.set_random_seed(0)
    model = MultiTaskNet("resnet18", tasks=("class",))
    summary = write_pseudomask_dataset(model, samples, 64, tmp_path / "pm", PseudoMaskSettings("gradcam"), figures=1,
                                       progress=lambda m: None)
    assert summary["images"] == len(samples) and summary["vs_drawn"]["n"] == 6  # 3 tumour classes x 2 test+train
    written = discover_tumour_images(tmp_path / "pm")
    assert len(written) == len(samples) and not (tmp_path / "pm.partial").exists()
    assert sorted(s.label for s in written) == sorted(s.label for s in samples)
    for s in written:
        assert s.mask is not None  # every image, "no tumour" too (an empty, certain mask)
        mask = read_binary_mask(s.mask, read_rgb(s.image).shape[:2])
        if s.label == 2:
            assert not mask.any()
    assert len(list((tmp_path / "pm" / "figures").glob("*.png"))) == 3
    with pytest.raises(ValueError, match="already exists"):
        write_pseudomask_dataset(model, samples, 64, tmp_path / "pm")


def _tumour_picture():
    """A grey head (disk) with a bright 12 x 12 tumour; a blurry activation map centred near it whose
    Otsu mask is much larger than the tumour, as a stride-16 map is."""
    import cv2

    rgb = np.zeros((64, 64, 3), np.uint8)
    cv2.circle(rgb, (32, 32), 28, (90, 90, 90), -1)
    rng = np.random.default_rng(0)
    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)
    rgb[rgb.sum(-1) < 30] = 0
    truth = np.zeros((64, 64), bool)
    truth[20:32, 30:42] = True
    rgb[truth] = 200
    yy, xx = np.mgrid[:64, :64]
    heat = np.exp(-((yy - 27) ** 2 + (xx - 35) ** 2) / (2 * 9.0 ** 2)).astype(np.float32)
    return rgb, heat, truth


def test_grabcut_snaps_a_coarse_map_to_the_tumour():
    from kerasbrain.evaluation.pseudomask import dice
    from kerasbrain.evaluation.pseudomask_refine import grabcut_refine

    rgb, heat, truth = _tumour_picture()
    head = head_mask(rgb)
    coarse = threshold_map(heat, head, PseudoMaskSettings())
    refined = grabcut_refine(rgb, heat, head, coarse)
    assert dice(truth, coarse) < 0.7 and dice(truth, refined) > 0.9, (dice(truth, coarse), dice(truth, refined))
    assert not grabcut_refine(rgb, heat, head, np.zeros_like(coarse)).any()  # nothing to refine
    with pytest.raises(ValueError, match="refine must be one of"):
        PseudoMaskSettings(refine="crf")


def test_grabcut_keeps_the_coarse_mask_when_the_cut_would_take_the_head():
    from kerasbrain.evaluation.pseudomask_refine import grabcut_refine

    rgb, _, _ = _tumour_picture()
    yy, xx = np.mgrid[:64, :64]
    heat = np.exp(-((yy - 45) ** 2 + (xx - 20) ** 2) / (2 * 6.0 ** 2)).astype(np.float32)  # on normal tissue
    head = head_mask(rgb)
    coarse = threshold_map(heat, head, PseudoMaskSettings())
    refined = grabcut_refine(rgb, heat, head, coarse)
    assert refined.sum() <= 2 * coarse.sum()  # never the whole head
    np.testing.assert_array_equal(refined, coarse)
