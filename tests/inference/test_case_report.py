"""A case report's confidence: from the probabilities, from a server's estimate, or said to be missing."""

import json
from pathlib import Path

import numpy as np
import pytest

from kerasbrain.data.io import format_of
from kerasbrain.data.labels import regions_to_labels
from kerasbrain.data.layouts import Case
from kerasbrain.data.nifti import Grid
from kerasbrain.inference.case_report import confidence_line, write_case_report


@pytest.fixture
def case_and_labels():
    rng = np.random.default_rng(4)
    image = rng.normal(100, 10, size=(12, 10, 8, 4)).astype(np.float32)
    probs = np.zeros((12, 10, 8, 3), np.float32)
    probs[2:6, 2:6, 2:5] = (0.9, 0.8, 0.7)
    probs[8:10, 6:8, 4:6, 0] = 0.6  # a second whole-tumour lesion
    case = Case("c1", image, None, Grid((12, 10, 8), np.eye(4), None, "memory"), "msd")
    return case, regions_to_labels(probs >= 0.5), probs


def test_the_report_estimates_from_the_probabilities(case_and_labels, tmp_path):
    case, labels, probs = case_and_labels
    fmt = format_of([Path("c1.nii.gz")], "volume")
    report, written = write_case_report(fmt, case, labels, probs, None, tmp_path / "c1_seg.nii.gz")
    # WT: 2 * (48 * 0.9 + 8 * 0.6) / (56 voxels + the same mass of 48) = 96 / 104
    assert report["confidence"]["expected_dice"]["WT"] == pytest.approx(96 / 104, abs=1e-4)
    assert all("mean_probability" in x for x in report["lesions"]) and len(report["lesions"]) == 4
    assert json.loads(written[-1].read_text()) == report
    # TC: 76.8 / 86.4, ET: 67.2 / 81.6
    assert confidence_line(report).startswith("estimated Dice WT/TC/ET 0.92/0.89/0.82 (")


def test_a_label_map_alone_takes_the_servers_estimate_or_says_there_is_none(case_and_labels, tmp_path):
    case, labels, _ = case_and_labels
    fmt = format_of([Path("c1.nii.gz")], "volume")
    served, _ = write_case_report(fmt, case, labels, None, None, tmp_path / "a_seg.nii.gz", [0.91, 0.82, 0.73])
    assert served["confidence"]["expected_dice"] == {"WT": 0.91, "TC": 0.82, "ET": 0.73}
    assert "computed by the server" in served["confidence"]["note"]
    assert not any("mean_probability" in x for x in served["lesions"]) and len(served["lesions"]) == 4
    bare, _ = write_case_report(fmt, case, labels, None, None, tmp_path / "b_seg.nii.gz")
    assert set(bare["confidence"]) == {"note"}
    assert confidence_line(bare).startswith("estimated Dice: not estimated: predicted through a server")
