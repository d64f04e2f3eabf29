"""A folder's table: each case's confidence as columns, and the cases to read first."""

from kerasbrain.inference.predict_cases import read_first, review_columns


def test_review_columns_flatten_the_reports_confidence_and_warnings():
    report = {"confidence": {"expected_dice": {"WT": 0.9, "TC": 0.8, "ET": 0.7},
                             "agreement": {"WT": 0.85, "TC": 0.75, "ET": 0.6}, "note": "words"}}
    assert review_columns(report) == {"expected_dice_WT": 0.9, "expected_dice_TC": 0.8, "expected_dice_ET": 0.7,
                                      "agreement_WT": 0.85, "agreement_TC": 0.75, "agreement_ET": 0.6}
    assert review_columns(None) == {} and review_columns({"lesions": []}) == {}
    assert review_columns({"input_warnings": ["a", "b"]}) == {"input_warnings": "a; b"}
    assert review_columns({"input_warnings": []}) == {"input_warnings": ""}


def test_read_first_orders_cases_by_their_lowest_region():
    rows = [{"case": "a", "expected_dice_WT": 0.95, "expected_dice_TC": 0.41, "expected_dice_ET": 0.9},
            {"case": "broken", "status": "failed"},  # no confidence: not listed
            {"case": "b", "expected_dice_WT": 0.97, "expected_dice_TC": 0.96, "expected_dice_ET": 0.93},
            {"case": "c", "expected_dice_WT": 0.62, "expected_dice_TC": 0.9, "expected_dice_ET": 0.88},
            {"case": "d", "expected_dice_WT": 0.99, "expected_dice_TC": 0.98, "expected_dice_ET": 0.97}]
    assert read_first(rows) == ["a (TC 0.41)", "c (WT 0.62)", "b (ET 0.93)"]
    assert read_first(rows, count=1) == ["a (TC 0.41)"]
    assert read_first([{"case": "x", "status": "ok"}]) == []
