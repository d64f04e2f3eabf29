import math

import numpy as np
import pytest

from kerasbrain.metrics.binary import binary_scores, classification_report, dataset_scores


def test_hand_computed_scores():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    s = binary_scores(pred, truth)  # tp 2, fp 1, fn 1, tn 4
    assert s == pytest.approx({"dice": 4 / 6, "iou": 2 / 4, "accuracy": 6 / 8, "precision": 2 / 3, "recall": 2 / 3})


def test_pooled_versus_per_image():
    truths = [np.array([1, 1, 0, 0], bool), np.zeros(4, bool)]
    preds = [np.array([1, 0, 0, 0], bool), np.zeros(4, bool)]
    result = dataset_scores(preds, truths)
    # pooled: tp 1, fn 1 -> dice 2/3; per image: 2/3 and 1 (both empty) -> mean 5/6
    assert result["pixels"]["dice"] == pytest.approx(2 / 3)
    assert result["images"]["dice"] == pytest.approx(5 / 6)
    assert math.isnan(binary_scores(preds[1], truths[1])["recall"])
    assert result["images"]["recall"] == pytest.approx(0.5)  # the undefined image is left out


def test_classification_report_has_seed_002_rows():
    report = classification_report([np.array([1, 0], bool)], [np.array([1, 1], bool)])
    assert "Background" in report and "Tumor" in report and "0.5000" in report
