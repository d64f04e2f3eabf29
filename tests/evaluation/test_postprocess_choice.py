"""A run's post-processing chosen when training ends: which cases, which thresholds, where it goes."""

import json
import types

import numpy as np
import pytest

from kerasbrain.data.labels import EDEMA
from kerasbrain.evaluation.postprocess_choice import RECORD, choice_cases, choose_on_cases, island_volumes_ml


def test_validation_cases_come_first_then_seeded_training_cases_up_to_the_limit():
    split = {"train": [f"T{i:02d}" for i in range(13)], "validation": ["V1", "V2", "V3"]}
    assert choice_cases(split, "validation", 16) == {"validation": ["V1", "V2", "V3"], "train": []}
    both = choice_cases(split, "validation+train", 8, seed=0)
    assert both["validation"] == ["V1", "V2", "V3"] and len(both["train"]) == 5
    assert set(both["train"]) <= set(split["train"]) and both["train"] == sorted(both["train"])
    assert choice_cases(split, "validation+train", 8, seed=0) == both  # seeded
    assert any(choice_cases(split, "validation+train", 8, seed=s)["train"] != both["train"] for s in (1, 2, 3))
    assert choice_cases(split, "validation+train", 99)["train"] == split["train"]  # all when they fit
    assert choice_cases(split, "validation+train", 2) == {"validation": ["V1", "V2"], "train": []}
    assert choice_cases({"train": ["A", "B"], "validation": []}, "validation", 16) == {"validation": [], "train": []}


def _case(case_id, truth):
    grid = types.SimpleNamespace(spacing=(1.0, 1.0, 1.0))
    return types.SimpleNamespace(case_id=case_id, labels=truth, grid=grid)


def _two_cases():
    """Case A: one lesion found, plus a false island of 27 voxels (0.027 mL). Case B: a lesion and a
    real satellite of 343 voxels (0.343 mL), both found. All edema, so TC and ET are empty (Dice 1)."""
    truth_a = np.zeros((48, 48, 48), np.uint8)
    truth_a[5:15, 5:15, 5:15] = EDEMA  # 1,000 voxels
    pred_a = truth_a.copy()
    pred_a[30:33, 30:33, 30:33] = EDEMA
    truth_b = truth_a.copy()
    truth_b[30:37, 30:37, 30:37] = EDEMA
    return [("validation", _case("A", truth_a)), ("train", _case("B", truth_b))], {"A": pred_a, "B": truth_b.copy()}


def test_the_threshold_that_drops_false_islands_but_keeps_real_satellites_is_chosen():
    cases, predictions = _two_cases()
    record = choose_on_cases(cases, lambda case: predictions[case.case_id], target="lesion", progress=lambda _: None)
    # lesion-wise WT by hand: off A (1 + 0) / 2 = 0.5, B 1; islands < 0.05, 0.1 or 0.2 mL: A 1, B 1;
    # < 0.5 mL and up: A 1, B (1 + 0) / 2 = 0.5 (the satellite is missed). Ties go to GLI's floor, 0.05.
    assert (record["min_component_ml"], record["min_enhancing_ml"]) == (0.05, 0.0)
    assert record["island_floor_ml"] == 0.05
    assert record["mean_off"] == pytest.approx(((0.5 + 1 + 1) / 3 + 1) / 2, abs=1e-6)
    assert record["mean_chosen"] == pytest.approx(1.0)
    means = {(m["min_component_ml"], m["min_enhancing_ml"]): m["mean"] for m in record["means"]}
    assert means[0.5, 0.0] == pytest.approx((1 + (0.5 + 1 + 1) / 3) / 2, abs=1e-6)
    assert len(means) == 8 * 7
    rows = {r["case_id"]: r for r in record["cases"]}
    assert rows["A"]["subset"] == "validation" and rows["A"]["islands_ml"] == [1.0, 0.027]
    assert rows["A"]["off"] == [0.5, 1.0, 1.0] and rows["A"]["chosen"] == [1.0, 1.0, 1.0]
    assert rows["B"]["islands_ml"] == [1.0, 0.343] and rows["B"]["off"] == rows["B"]["chosen"] == [1.0, 1.0, 1.0]


def test_the_whole_region_dice_can_be_the_target():
    cases, predictions = _two_cases()
    record = choose_on_cases(cases, lambda case: predictions[case.case_id], target="legacy", progress=lambda _: None)
    assert record["min_component_ml"] == 0.05 and record["target"] == "legacy"  # ties: the smallest that helps
    assert record["island_floor_ml"] == 0.0
    assert record["mean_off"] == pytest.approx(((2000 / 2027 + 2) / 3 + 1) / 2, abs=1e-6)  # A: 1,027 vs 1,000 voxels
    means = {(m["min_component_ml"], m["min_enhancing_ml"]): m["mean"] for m in record["means"]}
    assert means[0.5, 0.0] == pytest.approx((1 + (2000 / 2343 + 2) / 3) / 2, abs=1e-6)  # B loses its satellite


def _one_lesion(fragment: bool):
    """A 1,000-voxel lesion and, with `fragment`, a 27-voxel part of it two voxels away (one lesion
    under GLI's dilation, two components); predicted exactly."""
    truth = np.zeros((32, 32, 32), np.uint8)
    truth[5:15, 5:15, 5:15] = EDEMA
    if fragment:
        truth[17:20, 5:8, 5:8] = EDEMA
    return truth


@pytest.mark.parametrize("fragment", [False, True])
def test_ties_go_to_the_smallest_lesion_the_lesion_wise_dice_scores(fragment):
    """Cases without islands tie every threshold: for the lesion-wise Dice the choice is GLI's 50 mm^3
    (islands that small cannot be scored lesions, and a false one costs a whole lesion), for the
    whole-region Dice "off". Where removing them costs a true lesion's fragment, "off" wins either way."""
    from kerasbrain.inference.postprocess import island_floor_ml
    from kerasbrain.metrics.lesion_wise import LesionSettings

    truth = _one_lesion(fragment)
    cases = [("validation", _case("A", truth)), ("train", _case("B", truth))]
    lesion_wise = choose_on_cases(cases, lambda case: truth.copy(), target="lesion", progress=lambda _: None)
    legacy = choose_on_cases(cases, lambda case: truth.copy(), target="legacy", progress=lambda _: None)
    expected = 0.0 if fragment else 0.05
    assert (lesion_wise["min_component_ml"], lesion_wise["min_enhancing_ml"]) == (expected, 0.0)
    assert (legacy["min_component_ml"], legacy["min_enhancing_ml"]) == (0.0, 0.0)
    if fragment:  # the fragment removed: the lesion's Dice 2 * 1000 / 2027 in both cases, WT only
        means = {(m["min_component_ml"], m["min_enhancing_ml"]): m["mean"] for m in lesion_wise["means"]}
        assert means[0.05, 0.0] == pytest.approx((2000 / 2027 + 2) / 3, abs=1e-6)
    assert island_floor_ml("lesion", LesionSettings.of("MET")) == 0.0  # BraTS-MET scores lesions from 2 mm^3
    assert island_floor_ml("lesion", LesionSettings.of("PED")) == 0.05


def test_island_volumes_follow_the_spacing():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[0:2, 0:2, 0:2] = 1
    labels[5:9, 5:9, 5:9] = 3
    assert island_volumes_ml(labels, (2.0, 1.0, 1.0)) == [0.128, 0.016]
    assert island_volumes_ml(np.zeros((3, 3, 3)), (1, 1, 1)) == []


def test_a_run_without_cases_to_choose_on_keeps_its_thresholds(tmp_path):
    from kerasbrain.evaluation.postprocess_choice import choose_run_postprocessing
    from kerasbrain.inference.config import InferenceConfig
    from kerasbrain.training.config import PostprocessingConfig

    (tmp_path / "split.json").write_text(json.dumps({"train": ["A", "B"], "validation": []}))
    (tmp_path / "best.keras").write_bytes(b"a model")
    (tmp_path / "config.json").write_text(json.dumps({"inference": {"min_component_ml": 0.5}}))
    inference = InferenceConfig(min_component_ml=0.5)

    def open_session():
        raise AssertionError("no case to predict: the model is not loaded")

    lines = []
    settings = PostprocessingConfig(choose_on="validation")
    assert choose_run_postprocessing(tmp_path, tmp_path / "data", inference, open_session, settings,
                                     progress=lines.append) is None
    assert lines == ["post-processing: no case to choose on; [inference] keeps its thresholds"]
    assert json.loads((tmp_path / "config.json").read_text()) == {"inference": {"min_component_ml": 0.5}}
    assert not (tmp_path / RECORD).exists()
    assert choose_run_postprocessing(tmp_path, tmp_path, inference, open_session,
                                     PostprocessingConfig(choose_on="off")) is None
