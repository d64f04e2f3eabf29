import math

import numpy as np
import pytest

from kerasbrain.metrics import EMPTY_HD95, dice, hd95, region_scores, sensitivity, specificity


def test_hand_computed_rates():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    # tp 2, fn 1, fp 1, tn 4
    assert dice(pred, truth) == pytest.approx(4 / 6)
    assert sensitivity(pred, truth) == pytest.approx(2 / 3)
    assert specificity(pred, truth) == pytest.approx(4 / 5)


def test_empty_conventions():
    empty = np.zeros(10, bool)
    some = np.zeros(10, bool)
    some[3] = True
    assert dice(empty, empty) == 1.0
    assert dice(some, empty) == 0.0 and dice(empty, some) == 0.0
    assert math.isnan(sensitivity(some, empty))
    assert hd95(empty.reshape(2, 5), empty.reshape(2, 5)) == 0.0
    assert hd95(some.reshape(2, 5), empty.reshape(2, 5)) == EMPTY_HD95


def test_hd95_hand_computed():
    a = np.zeros((5, 5, 8), bool)
    b = np.zeros((5, 5, 8), bool)
    a[2, 2, 1] = True
    b[2, 2, 4] = True
    assert hd95(a, b) == pytest.approx(3.0)
    assert hd95(a, b, spacing=(1.0, 1.0, 2.0)) == pytest.approx(6.0)
    assert hd95(a, a) == 0.0


def test_hd95_of_shifted_slab():
    a = np.zeros((20, 20, 20), bool)
    a[5:15, 5:15, 5:15] = True
    b = np.roll(a, 2, axis=0)
    # Each 10^3 cube has 488 surface voxels: two 10x10 end faces and eight 36-voxel rings between.
    # b is a shifted by 2 along axis 0. Distances from a's surface to b's (and, by symmetry, back):
    #   0: the 7 rings inside b's extent and the 36-voxel rim of a's far face    -> 252 + 36 = 288
    #   1: a's ring just before b starts (36) and the 28 next-to-rim voxels of    -> 36 + 28  = 64
    #      a's far face, 1 from b's side faces
    #   2: a's near face, 2 before b's near face (100) and the inner 6x6 of a's   -> 100 + 36 = 136
    #      far face, 2 from b's far face
    distances = np.r_[np.zeros(288), np.ones(64), np.full(136, 2.0)]
    expected = float(np.percentile(distances, 95))  # = 2.0: the top 136 of 488 values are 2
    assert expected == 2.0
    assert hd95(a, b) == pytest.approx(expected)


def test_region_scores_hand_computed():
    truth = np.array([0, 1, 2, 3, 3, 0])
    pred = np.array([0, 1, 2, 2, 3, 2])
    s = region_scores(pred.reshape(1, 2, 3), truth.reshape(1, 2, 3), with_hd95=False)
    # WT: truth {1,2,3,4}, pred {1,2,3,4,5} -> dice 8/9
    assert s["dice_WT"] == pytest.approx(8 / 9)
    # TC: truth {1,3,4}, pred {1,4} -> dice 4/5
    assert s["dice_TC"] == pytest.approx(4 / 5)
    # ET: truth {3,4}, pred {4} -> dice 2/3, sensitivity 1/2
    assert s["dice_ET"] == pytest.approx(2 / 3)
    assert s["sens_ET"] == pytest.approx(0.5)
    # per label (seed 003): edema truth {2}, pred {2,3,5} -> sensitivity 1, specificity 3/5
    assert s["sens_edema"] == 1.0 and s["spec_edema"] == pytest.approx(3 / 5)


def test_seed_003s_soft_dice_hand_computed():
    from kerasbrain.metrics.numpy_metrics import soft_dice

    p = np.array([0.9, 0.8, 0.3, 0.0])
    y = np.array([1, 1, 0, 0])
    # 2 * (0.9 + 0.8) / (2.0 + 2) = 0.85, with seed 003's epsilon 1e-5 on both sides
    assert soft_dice(p, y) == pytest.approx((3.4 + 1e-5) / (4.0 + 1e-5))
    assert soft_dice(np.zeros(4), np.zeros(4)) == pytest.approx(1.0)  # nothing and nothing: eps / eps
    assert soft_dice(np.full(4, 0.5), y) == pytest.approx((2 * 1.0 + 1e-5) / (2.0 + 2 + 1e-5))
