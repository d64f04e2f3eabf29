"""QU-BraTS's filtering curves on hand-built volumes whose every number is worked out here."""

import numpy as np
import pytest

from kerasbrain.metrics.uncertainty_filtering import filtering_curves, shuffled_within


def _case():
    """1,000 head voxels: 100 tumour, predicted with 20 false negatives and 30 false positives."""
    truth = np.zeros(1000, bool)
    truth[:100] = True
    prediction = np.zeros(1000, bool)
    prediction[20:130] = True  # TP 80 (20..99), FN 20 (0..19), FP 30 (100..129)
    head = np.ones(1000, bool)
    return truth, prediction, head


def test_uncertainty_on_exactly_the_wrong_voxels():
    truth, prediction, head = _case()
    uncertainty = np.zeros(1000, np.float32)
    uncertainty[:20] = 90.0  # the false negatives: filtered from tau = 75 on
    uncertainty[100:130] = 60.0  # the false positives: filtered from tau = 50 on
    r = filtering_curves(truth, prediction, uncertainty, head)
    d100 = 2 * 80 / (100 + 110)  # nothing filtered
    d75 = 2 * 80 / (80 + 110)  # the FN gone from the truth
    assert r["dice"] == pytest.approx([d100, d75, 1.0, 1.0, 1.0])
    assert r["ftp"] == [0.0] * 5 and r["ftn"] == [0.0] * 5  # no correct voxel filtered
    auc_dice = (25 * (d100 + d75) / 2 + 25 * (d75 + 1) / 2 + 25 + 25) / 100
    assert r["auc_dice"] == pytest.approx(auc_dice)
    assert r["score"] == pytest.approx((auc_dice + 1 + 1) / 3)


def test_uncertainty_on_correct_voxels_is_penalised():
    truth, prediction, head = _case()
    uncertainty = np.zeros(1000, np.float32)
    uncertainty[20:60] = 80.0  # half the true positives, filtered from tau = 75
    uncertainty[500:800] = 30.0  # 300 of the 870 true negatives, filtered at tau = 25 and 0
    r = filtering_curves(truth, prediction, uncertainty, head)
    assert r["ftp"] == pytest.approx([0, 0.5, 0.5, 0.5, 0.5])
    assert r["ftn"] == pytest.approx([0, 0, 0, 300 / 870, 300 / 870])
    assert r["auc_ftp"] == pytest.approx((25 * 0.5 / 2 + 25 * 3 * 0.5) / 100)  # 0.4375
    assert r["auc_ftn"] == pytest.approx((12.5 * 300 / 870 + 25 * 300 / 870) / 100)


def test_tn_are_counted_in_the_head_only_and_dice_of_nothing_is_one():
    truth = np.zeros(10, bool)
    prediction = np.zeros(10, bool)
    head = np.zeros(10, bool)
    head[:4] = True
    uncertainty = np.array([100, 0, 0, 0, 100, 100, 100, 100, 100, 100], np.float32)
    r = filtering_curves(truth, prediction, uncertainty, head)
    assert r["dice"] == [1.0] * 5 and r["ftp"] == [0.0] * 5
    assert r["ftn"] == pytest.approx([0, 0.25, 0.25, 0.25, 0.25])  # 1 of the head's 4 TN, never the outside six


def test_the_shuffled_control_keeps_values_and_loses_the_information():
    truth, prediction, head = _case()
    head[900:] = False
    uncertainty = np.zeros(1000, np.float32)
    uncertainty[:20] = 90.0
    uncertainty[100:130] = 60.0
    shuffled = shuffled_within(uncertainty, head, seed=0)
    np.testing.assert_array_equal(np.sort(shuffled[head]), np.sort(uncertainty[head]))
    np.testing.assert_array_equal(shuffled[~head], uncertainty[~head])
    good, control = (filtering_curves(truth, prediction, u, head)["score"] for u in (uncertainty, shuffled))
    assert good > control + 0.05


def test_the_edge_control_marks_the_predicted_border():
    from kerasbrain.metrics.uncertainty_filtering import edge_uncertainty

    prediction = np.zeros(20, bool)
    prediction[8:12] = True
    edge = edge_uncertainty(prediction, width=3)
    # inside voxels 8 and 11 and outside voxels 7 and 12 touch the border: 100; then 67, 33, 0 away from it
    np.testing.assert_array_equal(edge[4:16], [0, 33, 67, 100, 100, 67, 67, 100, 100, 67, 33, 0])
    assert edge[:4].max() == 0 and edge[16:].max() == 0
    assert edge_uncertainty(np.zeros(5, bool)).max() == 0 and edge_uncertainty(np.ones(5, bool)).max() == 0
