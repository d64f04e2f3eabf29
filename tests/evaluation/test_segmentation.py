"""Dataset summaries and the demo pipeline."""

import json
import math
from pathlib import Path

import pytest

from kerasbrain.evaluation.segmentation import summarise
from tests.conftest import once


def test_summarise_leaves_undefined_scores_out_and_counts_them():
    rows = [{"case_id": "a", "dice_ET": 0.5, "sens_ET": float("nan")},
            {"case_id": "b", "dice_ET": 1.0, "sens_ET": 0.25},
            {"case_id": "c", "dice_ET": 0.0, "sens_ET": 0.75}]
    summary = summarise(rows)
    assert summary["dice_ET"] == {"mean": 0.5, "std": pytest.approx(math.sqrt(1 / 6)), "median": 0.5, "n": 3,
                                  "undefined": 0}
    assert summary["sens_ET"] == {"mean": 0.5, "std": 0.25, "median": 0.5, "n": 2, "undefined": 1}
    only_nan = summarise([{"case_id": "a", "x": float("nan")}])["x"]
    assert math.isnan(only_nan["mean"]) and only_nan["n"] == 0 and only_nan["undefined"] == 1
    assert summarise([]) == {}
    texts = summarise([{"case_id": "a", "dice_WT": "0.5", "input_warnings": ""},
                       {"case_id": "b", "dice_WT": "1", "input_warnings": "t1gd is a copy of T1w"}])
    assert list(texts) == ["dice_WT"] and texts["dice_WT"]["mean"] == 0.75  # CSV strings read; text left out


@once
@pytest.mark.slow
def test_demo_runs_every_stage_and_lists_what_it_wrote(tmp_path):
    from kerasbrain.demo import run_demo

    messages = []
    # a budget spent by the first step: the run stops after its first of 3 epochs, then goes on to evaluate
    outputs = run_demo(tmp_path / "demo", cases=3, epochs=3, steps_per_epoch=1, progress=messages.append,
                       shape=(40, 36, 30), minutes=0.001)
    assert "time budget of 0.001 min spent after epoch 1" in messages
    assert len((tmp_path / "demo" / "run" / "history.csv").read_text().splitlines()) == 2  # header + 1 epoch
    assert json.loads((tmp_path / "demo" / "outputs.json").read_text()) == outputs
    for key in ("best_model", "evaluation_csv", "evaluation_summary", "prediction", "overlay"):
        assert Path(outputs[key]).is_file(), key
    assert [m[:3] for m in messages if m[:2] in ("1/", "2/", "3/", "4/")] == ["1/4", "2/4", "3/4", "4/4"]
    assert "dice_WT" in messages[-2]  # the evaluation table is shown before the list of outputs
