"""BraTS post-processing: small enhancing tumour relabelled as core, its threshold chosen on cases."""

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.postprocess import (
    choose_min_enhancing_ml,
    enhancing_dice,
    enhancing_dice_by_threshold,
    relabel_small_enhancing,
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


def test_the_threshold_is_chosen_on_cases_by_brats_enhancing_dice():
    spacing = (1, 1, 1)
    true_et, spurious_et = case(40), case(30)  # 0.040 mL of real ET; 0.030 mL predicted where there is none
    candidates = (0.0, 0.035, 0.05)
    cases = [enhancing_dice_by_threshold(true_et, true_et, spacing, candidates),
             enhancing_dice_by_threshold(spurious_et, case(0), spacing, candidates)]
    assert enhancing_dice(case(0), case(0)) == 1.0 and enhancing_dice(spurious_et, case(0)) == 0.0
    threshold, scores = choose_min_enhancing_ml(cases)
    assert scores == {0.0: 0.5, 0.035: 1.0, 0.05: 0.5} and threshold == 0.035


def test_a_negative_threshold_names_the_key():
    with pytest.raises(ValueError, match="min_enhancing_ml: must not be negative"):
        InferenceConfig(min_enhancing_ml=-1)


def test_predict_applies_it_from_the_command_line(tmp_path, msd_dir, volume_run):
    from cli.main import cli

    source = msd_dir / "imagesTs" / "BRATS_004.nii.gz"
    plain, post = tmp_path / "plain.nii.gz", tmp_path / "post.nii.gz"
    for out, extra in ((plain, []), (post, ["--min-enhancing-ml", "1e9"])):
        result = CliRunner().invoke(cli, ["predict", "--model", str(volume_run), "--input", str(source), "--out",
                                          str(out), *extra])
        assert result.exit_code == 0, result.output
    before, after = np.asarray(nib.load(plain).dataobj), np.asarray(nib.load(post).dataobj)
    # MSD numbering: 1 edema, 2 non-enhancing core, 3 enhancing tumour
    assert (before == 3).any(), "the tiny model must predict some enhancing tumour for this test to mean anything"
    assert not (after == 3).any()
    np.testing.assert_array_equal(after > 0, before > 0)
    np.testing.assert_array_equal(after == 2, (before == 2) | (before == 3))
