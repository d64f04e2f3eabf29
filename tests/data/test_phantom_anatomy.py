"""The second phantom generator: deterministic, labels a rater would draw, the confounders it promises."""

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE
from kerasbrain.data.phantom_anatomy import make_anatomical_phantom
from tests.conftest import once_on

pytestmark = once_on("jax")  # numpy only: no backend in it
SHAPE = (56, 56, 40)


@pytest.fixture(scope="module")
def cases():
    return {d: [make_anatomical_phantom(SHAPE, seed=s, difficulty=d) for s in range(10)] for d in ("easy", "hard")}


def test_same_seed_same_case_and_unknown_difficulty_refused():
    a, b = make_anatomical_phantom(SHAPE, seed=4), make_anatomical_phantom(SHAPE, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], make_anatomical_phantom(SHAPE, seed=5)[1])
    with pytest.raises(ValueError, match="difficulty must be easy or hard"):
        make_anatomical_phantom(SHAPE, difficulty="nightmare")


def test_labels_are_nested_and_every_lesion_has_a_core(cases):
    for difficulty, group in cases.items():
        for image, labels in group:
            assert image.shape == SHAPE + (4,) and image.dtype == np.float32 and labels.dtype == np.uint8
            assert set(np.unique(labels)) <= {0, NECROTIC_CORE, EDEMA, ENHANCING}
            core = np.isin(labels, (NECROTIC_CORE, ENHANCING))
            parts, count = ndimage.label(labels > 0, np.ones((3, 3, 3)))
            assert count >= 1, difficulty
            for part in range(1, count + 1):  # edema never floats without its tumour
                assert core[parts == part].any(), (difficulty, part)


def test_hard_cases_vary_like_a_cohort(cases):
    hard = [labels for _, labels in cases["hard"]]
    lesions = [ndimage.label(np.isin(labels, (NECROTIC_CORE, ENHANCING)), np.ones((3, 3, 3)))[1] for labels in hard]
    assert max(lesions) >= 2, lesions  # satellites
    assert any(not (labels == ENHANCING).any() for labels in hard)  # a non-enhancing tumour
    assert any((labels == ENHANCING).any() for labels in hard)


def test_the_choroid_plexus_enhances_like_tumour(monkeypatch):
    """Plexus drawn as CSF instead: the T1Gd image darkens only in a small spot, which was as bright as the rim."""
    import kerasbrain.data.phantom_anatomy as anatomy

    image, labels = make_anatomical_phantom(SHAPE, seed=0)
    monkeypatch.setitem(anatomy._SIGNAL, anatomy._PLEXUS, anatomy._SIGNAL[anatomy._CSF])
    plain, same_labels = make_anatomical_phantom(SHAPE, seed=0)
    np.testing.assert_array_equal(labels, same_labels)
    darker = image[..., 2] - plain[..., 2] > 0.1 * np.median(image[..., 2][labels == ENHANCING])
    assert 0 < darker.sum() < 0.01 * darker.size and not (labels[darker] > 0).any()
    assert image[..., 2][darker].max() > 0.8 * np.median(image[..., 2][labels == ENHANCING])


def test_the_hard_background_keeps_its_noise_floor_and_scanners_have_their_own_units(cases):
    corner = (slice(0, 4),) * 3
    assert all((image[corner] == 0).all() for image, _ in cases["easy"])  # skull-stripped-like zeros outside
    assert all((image[corner] > 0).mean() > 0.9 for image, _ in cases["hard"])  # a magnitude image's noise floor
    scales = [np.median(image[..., 1][labels == 0]) for image, labels in cases["hard"]]
    assert max(scales) > 3 * min(scales), scales


def test_synth_writes_anatomical_cases_a_reader_accepts_and_refuses_it_where_it_means_nothing(tmp_path):
    from cli.main import cli
    from kerasbrain.data.layouts import discover, load_case

    result = CliRunner().invoke(cli, ["synth", "msd", "--out", str(tmp_path / "a"), "--cases", "2", "--shape",
                                      "32", "32", "24", "--generator", "anatomy", "--difficulty", "hard"])
    assert result.exit_code == 0, result.output
    dataset = discover(tmp_path / "a")
    assert len(dataset.cases) == 2
    image, labels = make_anatomical_phantom((32, 32, 24), seed=1, difficulty="hard")  # case i: seed * 100003 + i
    case = load_case(dataset.cases[1])
    np.testing.assert_array_equal(case.labels, labels)  # read back in the generator's own voxel order
    np.testing.assert_allclose(case.image, image, rtol=1e-6)
    result = CliRunner().invoke(cli, ["data", "check", str(tmp_path / "a"), "--out", str(tmp_path / "check")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["synth", "lgg", "--out", str(tmp_path / "lgg"), "--generator", "anatomy"])
    assert result.exit_code == 1 and "--generator applies to the msd and brats layouts, not lgg" in result.output
    assert not (tmp_path / "lgg").exists()
