"""Classification and mask scores against scikit-learn and hand-computed values."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from kerasbrain.evaluation.classification import class_table, classification_scores, mask_scores


def test_classification_scores_equal_scikit_learn_and_hand_counts():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    p = np.full((8, 4), 0.1)
    predicted = [0, 1, 1, 1, 2, 0, 3, 3]
    p[np.arange(8), predicted] = 0.7
    scores = classification_scores(y, p)
    assert scores["accuracy"] == 6 / 8
    assert scores["per_class"]["glioma"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert scores["per_class"]["meningioma"]["precision"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert scores["macro_roc_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert scores["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 2]]
    assert "| Glioma | 0.5000 | 0.5000 | 0.5000 | 2 |" in class_table(scores)
    missing = classification_scores(np.array([0, 1]), np.array([[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0]]))
    assert math.isnan(missing["macro_roc_auc"]) and missing["accuracy"] == 1.0


def test_mask_scores_hand_computed():
    truth = np.zeros((1, 2, 4), np.uint8)
    truth[0, 0] = 1  # 4 tumour pixels
    prob = np.array([[[0.9, 0.6, 0.4, 0.1], [0.7, 0.2, 0.2, 0.2]]])
    scores = mask_scores(truth, prob, thresholds=[0.3, 0.5, 0.8])
    # threshold 0.5: predicted {0.9, 0.6, 0.7} -> tp 2, fp 1, fn 2: Dice 4/7, IoU 2/5
    assert scores["dice"] == pytest.approx(4 / 7) and scores["iou"] == pytest.approx(2 / 5)
    # 0.3: tp 3, fp 1, fn 1 -> Dice 6/8; 0.8: tp 1, fp 0, fn 3 -> Dice 2/5
    assert scores["curves"]["dice"] == pytest.approx([6 / 8, 4 / 7, 2 / 5])
