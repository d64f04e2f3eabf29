"""BraTS 2023 lesion-wise scores on hand-built volumes in which each rule decides the answer."""

import numpy as np
import pytest

from kerasbrain.metrics.lesion_wise import MISSED_HD95, LesionSettings, lesion_wise, lesion_wise_region_scores
from kerasbrain.metrics.numpy_metrics import hd95


def box(shape, *slices):
    mask = np.zeros(shape, bool)
    mask[slices] = True
    return mask


SHAPE = (40, 30, 30)
A = box(SHAPE, slice(5, 9), slice(5, 9), slice(5, 9))  # 4 x 4 x 4 = 64 voxels
B = box(SHAPE, slice(13, 17), slice(5, 9), slice(5, 9))  # the same, 4 voxels of gap beyond A
FAR = box(SHAPE, slice(30, 32), slice(20, 22), slice(20, 22))  # 2 x 2 x 2, far from both
SMALL = box(SHAPE, slice(30, 33), slice(5, 8), slice(20, 23))  # 3 x 3 x 3 = 27 voxels


def test_lesions_closer_than_the_dilation_are_one_lesion():
    gli = lesion_wise(A, A | B, settings=LesionSettings.of("GLI"))  # dilation 3: 3 + 3 >= the 4-voxel gap
    assert (gli.tp, gli.fn, gli.fp) == (1, 0, 0)
    assert gli.dice == pytest.approx(2 * 64 / (64 + 128))
    assert gli.hd95 == pytest.approx(hd95(A, A | B))
    men = lesion_wise(A, A | B, settings=LesionSettings.of("MEN"))  # dilation 1: two lesions, B missed
    assert (men.tp, men.fn, men.fp) == (1, 1, 0)
    assert men.dice == pytest.approx((1.0 + 0.0) / 2) and men.hd95 == pytest.approx((0.0 + MISSED_HD95) / 2)
    assert [r["status"] for r in men.rows] == ["matched", "missed"]


def test_a_false_positive_island_is_a_term_of_dice_0_and_hd95_374():
    s = lesion_wise(A | FAR, A)
    assert (s.tp, s.fn, s.fp) == (1, 0, 1)
    assert s.dice == pytest.approx(0.5) and s.hd95 == pytest.approx(MISSED_HD95 / 2)
    assert s.rows[-1]["status"] == "false positive" and s.rows[-1]["volume_mm3"] == 8


def test_each_row_says_how_confident_its_predicted_components_were():
    near = box(SHAPE, slice(10, 12), slice(5, 7), slice(5, 7))  # 8 voxels matched to A beside A itself
    missed = box(SHAPE, slice(30, 35), slice(5, 10), slice(5, 10))  # 125 voxels, none predicted
    probability = np.zeros(SHAPE, np.float32)
    probability[A], probability[near], probability[FAR], probability[missed] = 0.9, 0.6, 0.55, 0.3
    s = lesion_wise(A | near | FAR, A | missed, probability=probability)
    rows = {r["status"]: r for r in s.rows}
    assert rows["matched"]["mean_probability"] == pytest.approx((64 * 0.9 + 8 * 0.6) / 72)  # A and its match
    assert np.isnan(rows["missed"]["mean_probability"])  # nothing predicted there
    assert rows["false positive"]["mean_probability"] == pytest.approx(0.55)
    assert "mean_probability" not in lesion_wise(A, A).rows[0]  # without probabilities, no column


def test_a_prediction_touching_a_lesions_dilation_is_matched_not_false():
    near = box(SHAPE, slice(10, 12), slice(5, 7), slice(5, 7))  # 1 voxel gap beyond A: inside A's 3-dilation
    s = lesion_wise(A | near, A)
    assert (s.tp, s.fp) == (1, 0)
    assert s.dice == pytest.approx(2 * 64 / (64 + 64 + 8))


def test_lesions_at_or_below_the_threshold_are_left_out_and_their_matches_are_not_false_positives():
    s = lesion_wise(A, A | SMALL)  # SMALL (27 mm^3) missed, but GLI leaves out lesions <= 50 mm^3
    assert (s.tp, s.fn, s.fp) == (1, 0, 0) and s.dice == 1.0 and s.hd95 == 0.0
    assert [r["status"] for r in s.rows] == ["matched", "below threshold"]
    met = lesion_wise(A, A | SMALL, settings=LesionSettings.of("MET"))  # MET scores lesions over 2 mm^3
    assert (met.tp, met.fn) == (1, 1) and met.dice == pytest.approx(0.5)
    found_small = lesion_wise(A | SMALL, A | SMALL)  # a match of a left-out lesion is no false positive
    assert (found_small.fp, found_small.dice) == (0, 1.0)


def test_empty_truth():
    empty = np.zeros(SHAPE, bool)
    assert (lesion_wise(empty, empty).dice, lesion_wise(empty, empty).hd95) == (1.0, 0.0)
    s = lesion_wise(FAR, empty)
    assert (s.dice, s.hd95, s.fp) == (0.0, MISSED_HD95, 1)


def test_the_threshold_is_a_volume_in_mm3_and_the_dilation_is_in_voxels():
    lesion = box(SHAPE, slice(5, 8), slice(5, 8), slice(5, 10))  # 45 voxels
    assert lesion_wise(np.zeros(SHAPE, bool), lesion, (1, 1, 1)).fn == 0  # 45 mm^3: left out
    thick = lesion_wise(np.zeros(SHAPE, bool), lesion, (1, 1, 3))  # 135 mm^3: scored, and missed
    assert (thick.fn, thick.dice, thick.hd95) == (1, 0.0, MISSED_HD95)
    assert thick.rows[0]["volume_mm3"] == 135


def test_settings_and_presets():
    assert LesionSettings.of("MET") == LesionSettings(1, 2.0, "MET")
    assert LesionSettings.of("GLI", dilation=1).preset == "GLI (custom)"
    with pytest.raises(ValueError, match="lesion preset must be one of GLI, MET, PED, MEN, SSA"):
        LesionSettings.of("XYZ")


def test_region_scores_from_label_maps():
    truth = np.zeros(SHAPE, np.uint8)
    truth[A] = 2  # edema ...
    truth[6:8, 6:8, 6:8] = 3  # ... around an enhancing core of 8 voxels (below 50 mm^3 for ET)
    pred = truth.copy()
    pred[FAR] = 2  # an edema island far away: a false positive of WT only
    scores, rows = lesion_wise_region_scores(pred, truth)
    assert scores["lesion_dice_WT"] == pytest.approx(0.5) and scores["lesions_fp_WT"] == 1
    assert scores["lesion_dice_TC"] == 1.0 and scores["lesion_dice_ET"] == 1.0  # the 8-voxel core is left out
    assert {r["region"] for r in rows} == {"WT", "TC", "ET"}


def test_postprocessing_is_chosen_for_the_score_the_user_names():
    """A tiny false island: removing it changes nothing whole-region but halves the lesion-wise loss."""
    from kerasbrain.evaluation.segmentation import lesion_dice_score
    from kerasbrain.inference.postprocess import choose_postprocessing, postprocessing_scores

    truth = np.zeros(SHAPE, np.uint8)
    truth[A] = 2
    pred = truth.copy()
    pred[FAR] = 2  # 8 voxels = 0.008 mL of false edema
    spacing = (1.0, 1.0, 1.0)
    legacy = postprocessing_scores(pred, truth, spacing, components=(0.0, 0.01), enhancing=(0.0,))
    lesion = postprocessing_scores(pred, truth, spacing, components=(0.0, 0.01), enhancing=(0.0,),
                                   score=lesion_dice_score(spacing, LesionSettings()))
    assert lesion[0.0, 0.0][0] == pytest.approx(0.5) and lesion[0.01, 0.0][0] == 1.0  # WT: the island costs half
    assert legacy[0.0, 0.0][0] == pytest.approx(2 * 64 / (64 + 72))  # whole-region: a few per cent
    assert choose_postprocessing([lesion])[0] == (0.01, 0.0)
