"""Pseudo-mask seeds from the healthy atlas: a known lesion in heads of other sizes and places is found,
healthy heads stay (almost) empty, and the pseudo-mask pipeline uses it for method "atlas"."""

import cv2
import numpy as np
import pytest

from kerasbrain.data.classes import NO_TUMOR
from kerasbrain.evaluation.healthy_atlas import HealthyAtlas, PlaneAtlases, head_region, plane_of
from kerasbrain.evaluation.pseudomask import PseudoMaskSettings, dice, pseudo_masks

GLIOMA = 0


def _head(rng, size=128, centre=(64, 64), radii=(44, 36), lesion=None, core_at=0.0):
    """A grey head (an ellipse with a darker core structure, noise) as uint8 RGB; `lesion` = (row, col, radius)
    in units of the head's radii, a bright disc at that place (and its mask)."""
    image = np.zeros((size, size), np.float32)
    cv2.ellipse(image, centre[::-1], radii[::-1], 0, 0, 360, 120, -1)
    core = (max(2, radii[1] // 3), max(2, radii[0] // 4))
    core_centre = (centre[1], int(centre[0] + core_at * radii[0]))  # core_at moves it up or down (another plane)
    cv2.ellipse(image, core_centre, core, 0, 0, 360, 70, -1)  # ventricles: dark tissue inside the head
    mask = np.zeros((size, size), np.uint8)
    if lesion is not None:
        row = int(centre[0] + lesion[0] * radii[0])
        col = int(centre[1] + lesion[1] * radii[1])
        cv2.circle(mask, (col, row), max(2, int(lesion[2] * radii[0])), 1, -1)
        image[mask > 0] = 210
    image = np.where(image > 0, image + rng.normal(0, 6, image.shape), 0)
    grey = np.clip(image, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1), mask.astype(bool)


def _atlas(rng):
    healthy = [_head(rng, centre=(64 + int(rng.integers(-8, 9)), 64 + int(rng.integers(-8, 9))),
                     radii=(int(rng.integers(38, 50)), int(rng.integers(30, 40))))[0] for _ in range(12)]
    return HealthyAtlas.fit(np.stack(healthy))


def test_a_lesion_is_found_in_heads_of_other_sizes_and_places_and_healthy_heads_stay_empty():
    rng = np.random.default_rng(0)
    atlas = _atlas(rng)
    lesions = [_head(rng, centre=c, radii=r, lesion=(-0.4, 0.35, 0.2)) for c, r in
               (((64, 64), (44, 36)), ((70, 58), (50, 40)), ((60, 66), (34, 28)))]
    images = np.stack([img for img, _ in lesions] + [_head(rng)[0], _head(rng)[0]])
    truth = np.stack([m for _, m in lesions] + [np.zeros((128, 128), bool)] * 2)
    masks, maps, classes = atlas.make_masks(images, np.array([GLIOMA, GLIOMA, GLIOMA, GLIOMA, NO_TUMOR]))
    for i in range(3):
        assert dice(truth[i], masks[i]) > 0.7, i  # the same place relative to the head, whatever its size
    assert masks[3].mean() < 0.01  # a healthy head called a tumour image: at most a speck
    assert not masks[4].any() and list(classes) == [GLIOMA] * 4 + [NO_TUMOR]
    assert maps.min() >= 0 and maps.max() <= 1 and maps[0][truth[0]].mean() > maps[0][~truth[0]].mean()


def test_unknown_classes_come_from_the_classifier_and_fitting_needs_two_images():
    rng = np.random.default_rng(1)
    atlas = _atlas(rng)
    image, truth = _head(rng, lesion=(0.3, -0.3, 0.2))
    masks, _, classes = atlas.make_masks(image[None], np.array([-1]), classify=lambda x: np.full(len(x), GLIOMA))
    assert classes[0] == GLIOMA and dice(truth, masks[0]) > 0.7
    with pytest.raises(ValueError, match="classifier"):
        atlas.make_masks(image[None], np.array([-1]))
    with pytest.raises(ValueError, match="at least 2"):
        HealthyAtlas.fit(image[None])


def test_the_head_region_keeps_dark_tissue_inside_the_head():
    image, _ = _head(np.random.default_rng(2))
    head = head_region(image)
    assert head[64, 64] and not head[0, 0]  # the dark core is inside
    assert abs(head.sum() - np.pi * 44 * 36) < 0.05 * np.pi * 44 * 36


def test_pseudo_masks_use_the_atlas_for_method_atlas():
    rng = np.random.default_rng(3)
    atlas = _atlas(rng)
    image, truth = _head(rng, lesion=(0.2, 0.3, 0.2))
    masks, _, _ = pseudo_masks(None, image[None], np.array([GLIOMA]), PseudoMaskSettings(method="atlas"), atlas=atlas)
    assert dice(truth, masks[0]) > 0.7
    with pytest.raises(ValueError, match="healthy atlas"):
        pseudo_masks(None, image[None], np.array([GLIOMA]), PseudoMaskSettings(method="atlas"))


def test_the_pseudo_mask_dataset_from_the_atlas_finds_the_phantoms_tumours(tmp_path):
    import keras

    from kerasbrain.data.phantom_classes import write_brisc
    from kerasbrain.data.tumour_images import discover_tumour_images
    from kerasbrain.evaluation.pseudomask import write_pseudomask_dataset
    from kerasbrain.models.multitask import MultiTaskNet

    samples = discover_tumour_images(write_brisc(tmp_path / "src", per_class=24, seed=4))
    keras.utils.set_random_seed(0)
    model = MultiTaskNet("resnet18", tasks=("class",))  # untrained: the atlas needs no classifier map
    messages = []
    summary = write_pseudomask_dataset(model, samples, 128, tmp_path / "pm", PseudoMaskSettings(method="atlas"),
                                       figures=0, progress=messages.append)
    healthy = sum(s.label == NO_TUMOR and s.subset == "train" for s in samples)
    assert f"healthy atlas from {healthy} 'no tumour' training images (ax)" in messages  # phantoms are axial
    assert summary["settings"]["method"] == "atlas", summary
    assert summary["vs_drawn"]["pooled_dice"] > 0.3, summary["vs_drawn"]
    assert "seeds_vs_drawn" not in summary  # nothing refined: one stage
    refined = write_pseudomask_dataset(model, samples, 128, tmp_path / "pm_grabcut",
                                       PseudoMaskSettings(method="atlas", refine="grabcut"), figures=1,
                                       progress=messages.append)
    assert refined["seeds_vs_drawn"] == summary["vs_drawn"]  # each stage scored: the seeds are the atlas's masks
    assert refined["vs_drawn"]["n"] == summary["vs_drawn"]["n"]
    assert len(list((tmp_path / "pm_grabcut" / "figures").glob("*.png"))) == 3  # one per tumour class


def test_each_imaging_plane_gets_its_own_atlas():
    rng = np.random.default_rng(5)
    axial = [_head(rng, centre=(64 + int(rng.integers(-6, 7)), 64))[0] for _ in range(6)]
    coronal = [_head(rng, centre=(64, 64 + int(rng.integers(-6, 7))), core_at=-0.5)[0] for _ in range(6)]
    atlases = PlaneAtlases(np.stack(axial + coronal), ["ax"] * 6 + ["co"] * 6)
    assert sorted(atlases.by_plane) == ["ax", "co"]
    assert plane_of("brisc2025_train_00001_gl_co_t1.jpg") == "co" and plane_of("case_12") == ""
    # a lesion where the other plane has its dark core: each plane's atlas sees only the lesion
    images = [_head(rng, lesion=(-0.5, 0.0, 0.15)), _head(rng, lesion=(0.0, 0.0, 0.15), core_at=-0.5)]
    masks, _, _ = atlases.make_masks(np.stack([i for i, _ in images]), np.array([GLIOMA, GLIOMA]), planes=["ax", "co"])
    for (_, truth), mask in zip(images, masks):
        assert dice(truth, mask) > 0.7
