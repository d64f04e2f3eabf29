"""The phantom generator: easy cases unchanged, hard cases harder in each of the ways issue 14 names."""

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from kerasbrain.data.labels import ENHANCING
from kerasbrain.data.phantom import make_phantom

SHAPE = (64, 64, 48)


def digest(array):
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def test_easy_phantoms_are_the_ones_every_figure_was_measured_on():
    image, labels = make_phantom((48, 44, 40), seed=3)  # digests taken before `difficulty` existed
    assert (digest(image), digest(labels)) == ("c628a73c94521f40", "53237dc8685e6bb6")
    np.testing.assert_array_equal(make_phantom((48, 44, 40), seed=3, difficulty="easy")[0], image)


def test_hard_phantoms_are_deterministic_and_refuse_unknown_difficulties():
    a, b = make_phantom(SHAPE, seed=5, difficulty="hard"), make_phantom(SHAPE, seed=5, difficulty="hard")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="difficulty must be one of easy, hard"):
        make_phantom(SHAPE, difficulty="nightmare")


@pytest.fixture(scope="module")
def cases():
    return {d: [make_phantom(SHAPE, seed=s, difficulty=d) for s in range(8)] for d in ("easy", "hard")}


def test_hard_lesions_are_smaller_and_sometimes_multi_focal(cases):
    size = {d: np.mean([(labels > 0).mean() for _, labels in cases[d]]) for d in cases}
    assert size["hard"] < 0.7 * size["easy"], size
    foci = [ndimage.label(ndimage.binary_opening(labels > 0))[1] for _, labels in cases["hard"]]
    assert sum(n >= 2 for n in foci) >= 2, foci


def test_hard_cases_have_bright_spots_that_are_not_tumour(cases):
    """White-matter hyperintensities: FLAIR as bright as edema, far from any labelled tumour."""
    def bright_non_tumour(image, labels):
        flair, brain = image[..., 0], image[..., 0] > 0
        away = brain & ~ndimage.binary_dilation(labels > 0, iterations=3)
        return int((flair > 1.6 * np.median(flair[away]))[away].sum())

    easy = [bright_non_tumour(*case) for case in cases["easy"]]
    hard = [bright_non_tumour(*case) for case in cases["hard"]]
    assert np.median(hard) > 3 * np.median(easy), (easy, hard)


def test_hard_tumours_stand_out_less_and_scanners_differ_per_case(cases):
    def enhancing_contrast(image, labels):  # T1Gd of enhancing tumour over the rest of the brain
        t1gd, brain = image[..., 2], image[..., 2] > 0
        return np.median(t1gd[labels == ENHANCING]) / np.median(t1gd[brain & (labels == 0)])

    contrast = {d: np.median([enhancing_contrast(*c) for c in cases[d] if (c[1] == ENHANCING).any()]) for d in cases}
    assert contrast["hard"] < contrast["easy"], contrast

    def modality_ratio(image, labels):  # FLAIR / T2 of healthy brain: a per-case gamma moves it
        brain = (image[..., 0] > 0) & (labels == 0)
        return np.median(image[..., 0][brain]) / np.median(image[..., 3][brain])

    spread = {d: np.std(np.log([modality_ratio(*c) for c in cases[d]])) for d in cases}
    assert spread["hard"] > 3 * spread["easy"], spread


def test_synth_writes_hard_cases_and_refuses_a_difficulty_where_it_means_nothing(tmp_path):
    from cli.main import cli

    result = CliRunner().invoke(cli, ["synth", "msd", "--out", str(tmp_path / "hard"), "--cases", "1", "--shape",
                                      "32", "32", "24", "--difficulty", "hard"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "hard" / "imagesTr" / "BRATS_001.nii.gz").exists()
    result = CliRunner().invoke(cli, ["synth", "brisc", "--out", str(tmp_path / "b"), "--difficulty", "hard"])
    assert result.exit_code == 1 and "--difficulty applies to the msd, brats and lgg layouts" in result.output
    assert not (tmp_path / "b").exists()


def test_synth_spacing_writes_the_same_voxels_under_another_voxel_size(tmp_path):
    import SimpleITK as sitk

    from cli.main import cli

    for name, extra in (("plain", []), ("thick", ["--spacing", "0.5", "0.5", "5"])):
        result = CliRunner().invoke(cli, ["synth", "brats2023", "--out", str(tmp_path / name), "--cases", "1",
                                          "--shape", "32", "32", "24", *extra])
        assert result.exit_code == 0, result.output
    images = {name: sitk.ReadImage(str(next((tmp_path / name).rglob("*-seg.nii.gz")))) for name in ("plain", "thick")}
    assert images["plain"].GetSpacing() == (1.0, 1.0, 1.0)
    assert images["thick"].GetSpacing() == (0.5, 0.5, 5.0)
    assert images["thick"].GetDirection() == images["plain"].GetDirection()
    assert np.array_equal(sitk.GetArrayFromImage(images["thick"]), sitk.GetArrayFromImage(images["plain"]))
    result = CliRunner().invoke(cli, ["synth", "lgg", "--out", str(tmp_path / "lgg"), "--spacing", "1", "1", "2"])
    assert result.exit_code == 1 and "--spacing applies to the msd and brats layouts, not lgg" in result.output
    assert not (tmp_path / "lgg").exists()
