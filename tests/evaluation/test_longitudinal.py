"""Two time points: lesions matched through world coordinates across a known rotation and shift of the
grid, new and vanished lesions, and volume changes worked out by hand."""

import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE
from kerasbrain.evaluation.longitudinal import TimePoint, compare_time_points, onto

SHAPE = (48, 40, 30)


def _ball(centre, radius, shape=SHAPE):
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    return ((grid - np.asarray(centre)) ** 2).sum(-1) <= radius ** 2


def _labels(lesions):
    """Internal labels with, per (centre, radius) lesion, edema around a core with an enhancing rim."""
    labels = np.zeros(SHAPE, np.uint8)
    for centre, radius in lesions:
        labels[_ball(centre, radius)] = EDEMA
        labels[_ball(centre, radius - 2)] = ENHANCING
        labels[_ball(centre, radius - 4)] = NECROTIC_CORE
    return labels


AFFINE = np.array([[1.0, 0, 0, -20], [0, 1.0, 0, -30], [0, 0, 2.0, 5], [0, 0, 0, 1]])


def _rotated(point: TimePoint) -> TimePoint:
    """The same world content on another grid: rotated 90 degrees in-plane and shifted by 7 voxels."""
    labels = np.rot90(point.labels, k=1, axes=(0, 1))  # rotated[i, j] = old[j, Y - 1 - i]
    labels = np.pad(labels, ((7, 0), (0, 0), (0, 0)))  # new[i, j] = old[j, Y + 6 - i]
    voxel = np.array([[0, 1, 0, 0], [-1, 0, 0, SHAPE[1] + 6], [0, 0, 1, 0], [0, 0, 0, 1]], float)  # new -> old voxel
    return TimePoint(point.name + " (rotated)", labels, point.affine @ voxel)


def test_the_same_lesions_on_a_rotated_shifted_grid_are_unchanged():
    before = TimePoint("t0", _labels([((14, 12, 10), 7), ((34, 28, 18), 5)]), AFFINE)
    after = _rotated(TimePoint("t1", before.labels.copy(), AFFINE))
    np.testing.assert_array_equal(onto(after, before).labels, before.labels)  # back onto the first grid exactly
    result = compare_time_points(before, after)
    assert result["counts"] == {"matched": 2, "split": 0, "new": 0, "vanished": 0}
    for key in ("WT_ml", "TC_ml", "ET_ml", "rano_product_mm2"):
        assert result["totals"][key]["change"] == 0.0 and result["totals"][key]["before"] > 0


def test_growth_a_new_lesion_and_a_vanished_one():
    before = TimePoint("t0", _labels([((14, 12, 10), 7), ((34, 28, 18), 5)]), AFFINE)
    after = TimePoint("t1", _labels([((14, 12, 10), 9), ((38, 8, 22), 5)]), AFFINE)
    result = compare_time_points(before, after)
    assert result["counts"] == {"matched": 1, "split": 0, "new": 1, "vanished": 1}
    rows = {r["status"]: r for r in result["lesions"]}
    voxel_ml = 2.0 / 1000
    grown = rows["matched"]
    assert grown["before_WT_ml"] == pytest.approx(_ball((14, 12, 10), 7).sum() * voxel_ml)
    assert grown["after_WT_ml"] == pytest.approx(_ball((14, 12, 10), 9).sum() * voxel_ml)
    assert grown["change_ET_ml"] > 0 and grown["change_rano_product_mm2"] > 0
    assert rows["vanished"]["after_WT_ml"] == 0 and rows["vanished"]["before_lesion"] == 2
    assert rows["new"]["before_WT_ml"] == 0 and rows["new"]["centre_mm"] == [18.0, -22.0, 49.0]
    total = result["totals"]["WT_ml"]
    assert total["change"] == pytest.approx(total["after"] - total["before"])


def test_a_lesion_that_moved_without_overlap_is_matched_within_the_distance():
    before = TimePoint("t0", _labels([((14, 12, 10), 4)]), AFFINE)
    after = TimePoint("t1", _labels([((23, 12, 10), 4)]), AFFINE)  # 9 mm along x: no overlap
    assert compare_time_points(before, after, match_mm=10)["counts"]["matched"] == 1
    assert compare_time_points(before, after, match_mm=5)["counts"] == {"matched": 0, "split": 0, "new": 1,
                                                                         "vanished": 1}


def test_the_compare_command_writes_the_table_and_the_picture(tmp_path):
    msd = {EDEMA: 1, NECROTIC_CORE: 2, ENHANCING: 3}  # internal -> MSD numbering
    for name, lesions in (("t0", [((14, 12, 10), 7), ((34, 28, 18), 5)]), ("t1", [((14, 12, 10), 9)])):
        labels = np.vectorize(lambda v: msd.get(v, 0))(_labels(lesions)).astype(np.uint8)
        nib.save(nib.Nifti1Image(labels, AFFINE), tmp_path / f"{name}.nii.gz")
    result = CliRunner().invoke(cli, ["compare", "--before", str(tmp_path / "t0.nii.gz"), "--after",
                                      str(tmp_path / "t1.nii.gz"), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "lesions: 1 matched, 0 split, 0 new, 1 vanished" in result.output
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["counts"]["vanished"] == 1 and "no diagnosis" in saved["note"]
    assert (tmp_path / "cmp" / "lesions.csv").read_text().count("\n") == 3
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 10_000
    image = np.zeros(SHAPE + (4,), np.float32)
    nib.save(nib.Nifti1Image(image, AFFINE), tmp_path / "scan.nii.gz")
    bad = CliRunner().invoke(cli, ["compare", "--before", str(tmp_path / "scan.nii.gz"), "--after",
                                   str(tmp_path / "t1.nii.gz"), "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and len(bad.output.strip().splitlines()) == 1 and "scan.nii.gz" in bad.output
    assert not (tmp_path / "bad").exists()


def _head_and_tumour():
    """A phantom head (ellipsoid with bright and dark structures) and a tumour, on AFFINE's grid."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"), -1).astype(float)
    image = np.zeros(SHAPE, np.float32)
    image[(((grid - (24, 20, 15)) / (20, 17, 12)) ** 2).sum(-1) <= 1] = 100
    image[_ball((16, 14, 15), 5)] = 180
    image[_ball((30, 26, 12), 4)] = 40
    image[(np.abs(grid[..., 0] - 24) <= 1) & (image > 0)] = 140  # a midline
    labels = _labels([((28, 14, 16), 6)])
    image[labels > 0] += 60
    return image, labels


def test_registration_undoes_a_head_moved_between_sessions():
    from scipy import ndimage

    image, labels = _head_and_tumour()
    before = TimePoint("t0", labels, AFFINE, image[..., None])
    angle = np.deg2rad(6)  # the same head lying 6 degrees rotated and 3 voxels shifted in the scanner
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    centre = np.array(SHAPE) / 2
    offset = centre - rotation @ centre + (3, -2, 0)
    moved_image = ndimage.affine_transform(image, rotation, offset, order=1)
    moved_labels = ndimage.affine_transform(labels, rotation, offset, order=0)
    after = TimePoint("t1", moved_labels, AFFINE, moved_image[..., None])

    def dice(a, b):
        return 2 * ((a > 0) & (b > 0)).sum() / ((a > 0).sum() + (b > 0).sum())

    plain = compare_time_points(before, after)
    registered = compare_time_points(before, after, register=True)
    from kerasbrain.evaluation.longitudinal import register_onto

    back = register_onto(after, before)
    assert dice(back.labels, labels) > 0.9 > dice(moved_labels, labels) + 0.1
    assert registered["counts"]["matched"] == 1 and "registration" in registered["grid"]
    assert abs(registered["totals"]["WT_ml"]["change"]) < 0.05 * registered["totals"]["WT_ml"]["before"]
    assert plain["grid"].endswith("world coordinates")
    with pytest.raises(ValueError, match="needs their images"):
        register_onto(TimePoint("x", labels, AFFINE), before)
