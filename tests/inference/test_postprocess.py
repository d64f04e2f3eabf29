"""BraTS post-processing: tumour islands removed, small enhancing tumour relabelled as core, thresholds chosen on cases."""

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.postprocess import (
    choose_postprocessing,
    postprocess,
    postprocess_with,
    postprocessing_scores,
    region_dice,
    relabel_small_enhancing,
    remove_small_components,
    remove_specks,
)


def case(enhancing_voxels: int):
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:8, 2:8, 2:8] = EDEMA
    labels[4:6, 4:6, 4:6] = NECROTIC_CORE
    labels.reshape(-1)[np.flatnonzero(labels == EDEMA)[:enhancing_voxels]] = ENHANCING
    return labels


def test_enhancing_tumour_below_the_threshold_becomes_core():
    labels = case(3)  # 3 voxels of 2 x 2 x 2 mm = 0.024 mL
    relabelled = relabel_small_enhancing(labels, (2, 2, 2), 0.05)
    assert not (relabelled == ENHANCING).any() and (relabelled == NECROTIC_CORE).sum() == 8 + 3
    assert ((relabelled > 0) == (labels > 0)).all()  # the whole tumour is untouched
    np.testing.assert_array_equal(relabel_small_enhancing(labels, (2, 2, 2), 0.02), labels)  # 0.024 >= 0.02
    np.testing.assert_array_equal(relabel_small_enhancing(labels, (2, 2, 2), 0.0), labels)  # off


def test_islands_below_the_threshold_go_and_the_largest_component_always_stays():
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[1:4, 1:4, 1:4] = EDEMA  # 27 voxels of 1 mL each: the main lesion
    labels[8:10, 8:10, 8:10] = ENHANCING  # an 8 mL island
    labels[10, 1, 1] = NECROTIC_CORE  # a 1 mL island
    labels[4, 4, 4] = EDEMA  # touches the main lesion by a corner: the same component (26 neighbours)
    labels[2, 2, 2] = ENHANCING  # 1 mL of enhancing tumour in the main lesion
    spacing = (10, 10, 10)
    kept = remove_small_components(labels, spacing, 2.0)
    assert kept[10, 1, 1] == 0 and (kept[8:10, 8:10, 8:10] == ENHANCING).all() and kept[4, 4, 4] == EDEMA
    assert (kept > 0).sum() == 27 + 8 + 1
    only_largest = remove_small_components(labels, spacing, 1e9)
    np.testing.assert_array_equal(only_largest > 0, (labels > 0) & (np.arange(12)[:, None, None] < 5))
    np.testing.assert_array_equal(remove_small_components(labels, spacing, 0.0), labels)  # off
    single = np.zeros_like(labels)
    single[5, 5, 5] = ENHANCING  # a case whose only lesion is tiny keeps it
    np.testing.assert_array_equal(remove_small_components(single, spacing, 1e9), single)
    # islands go first, so the removed island's 8 mL of enhancing tumour no longer count: 1 mL < 2 mL
    expected = only_largest.copy()
    expected[2, 2, 2] = NECROTIC_CORE
    np.testing.assert_array_equal(postprocess(labels, spacing, 9.0, 2.0), expected)


def test_specks_join_the_region_around_them_innermost_first():
    labels = np.zeros((14, 14, 14), np.uint8)
    labels[2:10, 2:10, 2:10] = EDEMA  # 512 voxels of 1 mm^3: the main lesion
    labels[4:8, 4:8, 4:8] = NECROTIC_CORE  # 64 voxels of core
    labels[4:6, 4:6, 4:8] = ENHANCING  # 16 voxels of enhancing tumour inside the core: kept
    labels[8, 8, 8] = ENHANCING  # a 1-voxel enhancing speck touching the core by a corner: becomes core
    labels[2, 2, 2] = ENHANCING  # a 1-voxel enhancing speck in edema: core, then a core speck: edema
    labels[3, 9, 3:5] = NECROTIC_CORE  # a 2-voxel core speck in edema: edema
    labels[12, 12, 12] = ENHANCING  # a 1-voxel island of its own: background
    expected = labels.copy()
    expected[8, 8, 8] = NECROTIC_CORE
    expected[2, 2, 2] = EDEMA
    expected[3, 9, 3:5] = EDEMA
    expected[12, 12, 12] = 0
    np.testing.assert_array_equal(remove_specks(labels, (1, 1, 1), 0.01), expected)  # 10 mm^3
    assert remove_specks(labels, (1, 1, 1), 0.0) is labels  # off
    # at 3 mm a voxel is 27 mm^3 > 10 mm^3: nothing is a speck; at 0.0161 mL the 16-voxel ET part is one
    np.testing.assert_array_equal(remove_specks(labels, (3, 3, 3), 0.01), labels)
    assert not (remove_specks(labels, (1, 1, 1), 0.0161) == ENHANCING).any()
    tiny = np.zeros_like(labels)
    tiny[5, 5, 5:7] = ENHANCING  # a case whose whole tumour is a speck keeps it, as core inside edema
    kept = remove_specks(tiny, (1, 1, 1), 0.01)
    assert (kept[5, 5, 5:7] == EDEMA).all() and (kept > 0).sum() == 2


def test_an_enhancing_speck_no_longer_zeroes_a_case_without_enhancing_tumour():
    truth = np.zeros((10, 10, 10), np.uint8)
    truth[1:9, 1:9, 1:9] = EDEMA
    truth[3:7, 3:7, 3:7] = NECROTIC_CORE  # 64 mm^3 of core, no enhancing tumour
    predicted = truth.copy()
    predicted[4, 4, 4] = ENHANCING  # one voxel inside the core (BraTS: ET Dice 0, a false-positive lesion)
    predicted[1, 1, 1] = ENHANCING  # one voxel in the edema
    assert region_dice(predicted, truth)[2] == 0.0
    cleaned = postprocess_with(predicted, (1, 1, 1), InferenceConfig())  # the default: 0.01 mL
    assert InferenceConfig().min_part_ml == 0.01 and region_dice(cleaned, truth) == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(cleaned, truth)


def test_the_thresholds_are_chosen_on_cases_by_mean_region_dice():
    spacing = (1, 1, 1)
    true_et, spurious_et = case(40), case(30)  # 0.040 mL of real ET; 0.030 mL predicted where there is none
    island = case(40)
    island[0, 0, 0] = EDEMA  # a 0.001 mL false island, apart from the lesion
    components, enhancing = (0.0, 0.002), (0.0, 0.035, 0.05)
    cases = [postprocessing_scores(p, t, spacing, components, enhancing)
             for p, t in ((true_et, true_et), (spurious_et, case(0)), (island, case(40)))]
    assert region_dice(case(0), case(0)) == (1.0, 1.0, 1.0) and region_dice(spurious_et, case(0))[2] == 0.0
    wt_with_island = 2 * 216 / (217 + 216)
    assert cases[2][0.0, 0.0] == (wt_with_island, 1.0, 1.0) and cases[2][0.002, 0.0] == (1.0, 1.0, 1.0)
    pair, means = choose_postprocessing(cases)
    assert pair == (0.002, 0.035)
    # per case (WT, TC, ET); the spurious case's 30 enhancing voxels are core either way (TC 2*8/46)
    tc = 2 * 8 / (38 + 8)
    assert means[0.002, 0.035] == pytest.approx(np.mean([1, 1, 1, 1, tc, 1, 1, 1, 1]))
    assert means[0.0, 0.0] == pytest.approx(np.mean([1, 1, 1, 1, tc, 0, wt_with_island, 1, 1]))
    assert means[0.002, 0.05] == pytest.approx(np.mean([1, 1, 0, 1, tc, 1, 1, 1, 0]))


def test_a_negative_threshold_names_the_key():
    with pytest.raises(ValueError, match="min_enhancing_ml: must not be negative"):
        InferenceConfig(min_enhancing_ml=-1)
    with pytest.raises(ValueError, match="min_component_ml: must not be negative"):
        InferenceConfig(min_component_ml=-1)
    with pytest.raises(ValueError, match="min_part_ml: must not be negative"):
        InferenceConfig(min_part_ml=-1)


def predict(*args):
    from cli.main import cli

    result = CliRunner().invoke(cli, ["predict", *map(str, args)])
    assert result.exit_code == 0, result.output


def test_predict_relabels_small_enhancing_tumour_from_the_command_line(tmp_path, msd_dir, volume_run):
    source = msd_dir / "imagesTs" / "BRATS_004.nii.gz"
    plain, post = tmp_path / "plain.nii.gz", tmp_path / "post.nii.gz"
    predict("--model", volume_run, "--input", source, "--out", plain)
    predict("--model", volume_run, "--input", source, "--out", post, "--min-enhancing-ml", "1e9")
    before, after = np.asarray(nib.load(plain).dataobj), np.asarray(nib.load(post).dataobj)
    # MSD numbering: 1 edema, 2 non-enhancing core, 3 enhancing tumour
    assert (before == 3).any(), "the tiny model must predict some enhancing tumour for this test to mean anything"
    assert not (after == 3).any()
    np.testing.assert_array_equal(after > 0, before > 0)
    np.testing.assert_array_equal(after == 2, (before == 2) | (before == 3))


def test_predict_passes_the_island_threshold_to_the_post_processing(tmp_path, msd_dir, volume_run, monkeypatch):
    # the tiny test model predicts one connected tumour, so the rule itself is checked on arrays
    # above; here: the flag reaches it, and the written labels are its result
    import kerasbrain.inference.predict_volume as predict_volume

    calls = []

    def recorded(labels, spacing, cfg):
        calls.append((labels.copy(), cfg.min_component_ml, cfg.min_enhancing_ml, cfg.min_part_ml))
        return postprocess_with(labels, spacing, cfg)

    monkeypatch.setattr(predict_volume, "postprocess_with", recorded)
    source = msd_dir / "imagesTs" / "BRATS_004.nii.gz"
    predict("--model", volume_run, "--input", source, "--out", tmp_path / "out.nii.gz", "--min-component-ml", "0.3",
            "--min-part-ml", "0.02")
    (raw, component, enhancing, part), = calls
    assert (component, enhancing, part) == (0.3, 0.0, 0.02) and (raw > 0).any()
    written = np.asarray(nib.load(tmp_path / "out.nii.gz").dataobj)
    spacing = nib.load(source).header.get_zooms()[:3]
    expected = remove_small_components(remove_specks(raw, spacing, 0.02), spacing, 0.3)
    assert (written > 0).sum() == (expected > 0).sum()


def test_each_distinct_label_map_is_scored_once():
    island = case(40)  # 40 enhancing voxels: 0.04 mL at 1 mm
    island[0, 0, 0] = EDEMA  # a 0.001 mL island
    truth = case(40)
    calls = []

    def score(labels, reference):
        calls.append(1)
        return region_dice(labels, reference)

    scores = postprocessing_scores(island, truth, (1.0, 1.0, 1.0), score=score)
    # 49 pairs, 4 maps: the island kept (0 mL) or removed (any other), the enhancing tumour kept
    # (0 mL) or relabelled (0.05 mL and up)
    assert len(scores) == 56 and len(calls) == 4
    for (c, e), value in scores.items():
        assert value == region_dice(postprocess(island, (1.0, 1.0, 1.0), c, e), truth)
