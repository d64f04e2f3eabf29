"""Risk-coverage analysis of a case-level confidence, on hand-computed rankings."""

import numpy as np
import pytest

from kerasbrain.evaluation.failure_detection import (aurc, failure_detection, failure_detection_by_region,
                                                     selective_risks)


def test_selective_risk_and_its_area_by_hand():
    confidence, risk = [0.9, 0.5, 0.7], [0.1, 0.6, 0.2]
    np.testing.assert_allclose(selective_risks(confidence, risk), [0.1, 0.15, 0.3])
    assert aurc(confidence, risk) == pytest.approx(0.55 / 3)
    assert aurc([0.1, 0.9, 0.3], risk) == pytest.approx((0.6 + 0.4 + 0.3) / 3)  # the worst ranking


def test_ties_rank_in_random_order_in_expectation():
    # a constant score is exactly random: every coverage's expected risk is the mean risk
    np.testing.assert_allclose(selective_risks([0.5, 0.5, 0.5], [0.1, 0.6, 0.2]), [0.3, 0.3, 0.3])
    # a tie between the two most confident: their mean risk at coverage 1 and 2
    np.testing.assert_allclose(selective_risks([1.0, 1.0, 0.0], [0.0, 0.4, 1.0]), [0.2, 0.2, 1.4 / 3])


def test_failure_detection_against_the_oracle_and_random():
    dice = [0.95, 0.5, 0.9, 0.7]
    confidence = [0.9, 0.6, 0.8, 0.85]
    result = failure_detection(confidence, dice, failure_below=0.8)
    risk = 1 - np.array(dice)
    assert result["cases"] == 4 and result["failures"] == 2
    assert result["aurc_random"] == pytest.approx(risk.mean(), abs=1e-4)
    # oracle order 0.95, 0.9, 0.7, 0.5: risks 0.05, 0.1, 0.3, 0.5
    oracle = np.mean([0.05, 0.075, 0.15, 0.2375])
    assert result["aurc_oracle"] == pytest.approx(oracle, abs=1e-4)
    # this ranking: 0.9 (0.05), 0.85 (0.3), 0.8 (0.1), 0.6 (0.5)
    mine = np.mean([0.05, 0.175, 0.15, 0.2375])
    assert result["aurc"] == pytest.approx(mine, abs=1e-4)
    assert result["eaurc"] == pytest.approx(mine - oracle, abs=1e-4)
    assert result["auroc_failure"] == pytest.approx(0.75)  # 3 of the 4 failed-good pairs ordered right
    assert result["spearman"] == pytest.approx(0.8)  # ranks 4 1 2 3 against 4 1 3 2
    assert result["mean_abs_error"] == pytest.approx(np.mean([0.05, 0.1, 0.1, 0.15]), abs=1e-4)


def test_undefined_parts_are_none_and_bad_shapes_are_refused():
    result = failure_detection([0.9, 0.8], [0.95, 0.9])
    assert result["auroc_failure"] is None and result["failures"] == 0
    assert failure_detection([0.5, 0.5], [0.9, 0.7])["spearman"] is None
    assert failure_detection([np.nan], [0.5]) == {"cases": 0}
    with pytest.raises(ValueError, match="one value per case"):
        failure_detection([0.5, 0.4], [0.9])


def test_by_region_reads_the_rows_columns():
    rows = [{"expected_dice_WT": c, "dice_WT": d, "expected_dice_TC": 1.0, "dice_TC": d,
             "expected_dice_ET": c, "dice_ET": 1 - d} for c, d in [(0.9, 0.95), (0.6, 0.5), (0.8, 0.9)]]
    result = failure_detection_by_region(rows, "expected_dice")
    assert result["WT"]["eaurc"] == pytest.approx(0.0) and result["WT"]["spearman"] == pytest.approx(1.0)
    assert result["TC"]["aurc"] == pytest.approx(result["TC"]["aurc_random"])  # a constant score
    assert result["ET"]["spearman"] == pytest.approx(-1.0)
    assert failure_detection_by_region(rows, "agreement") == {}
