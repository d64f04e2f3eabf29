"""Per-patient scores and confidence of the 2-D evaluation, on hand-built slices."""

from types import SimpleNamespace

import numpy as np
import pytest

from kerasbrain.evaluation.slices import patient_rows
from kerasbrain.metrics.binary import mean_scores


def test_a_patients_scores_count_all_their_slices_pixels_together():
    # patient A's slices are not next to each other in the list; B has one empty slice
    slices = [SimpleNamespace(patient="A"), SimpleNamespace(patient="B"), SimpleNamespace(patient="A")]
    probs = np.array([[[0.9, 0.4], [0.1, 0.0]],
                      [[0.2, 0.0], [0.0, 0.0]],
                      [[0.8, 0.0], [0.6, 0.0]]])
    truths = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[1, 0], [0, 0]]], bool)
    rows = patient_rows(slices, probs, probs >= 0.5, truths)
    assert [r["patient"] for r in rows] == ["A", "B"]
    a, b = rows
    # A: tp 2 (one pixel in each slice), fp 1 (second slice), fn 1 (first slice)
    assert (a["slices"], a["tumour_slices"]) == (2, 2)
    assert a["dice"] == pytest.approx(4 / 6) and a["precision"] == pytest.approx(2 / 3)
    # expected Dice: 2 * (0.9 + 0.8 + 0.6) / (3 predicted pixels + 2.8 total probability)
    assert a["expected_dice"] == pytest.approx(4.6 / 5.8, abs=1e-4)
    # B: nothing to find, nothing found -> Dice 1; the estimate is the chance nothing is there, 1 - max p
    assert (b["slices"], b["tumour_slices"], b["dice"]) == (1, 0, 1.0) and np.isnan(b["precision"])
    assert b["expected_dice"] == pytest.approx(0.8)
    means = mean_scores(rows)
    assert means["dice"] == pytest.approx((4 / 6 + 1) / 2)
    assert means["precision"] == pytest.approx(2 / 3)  # B's undefined precision is left out
    assert np.isnan(mean_scores([b])["precision"])
