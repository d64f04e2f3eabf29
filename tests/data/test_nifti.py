import nibabel as nib
import numpy as np

from kerasbrain.data.layouts import CaseFiles, load_case
from kerasbrain.data.nifti import Grid, from_canonical, load_nifti, save_nifti, to_canonical


def _grid(affine, shape=(4, 5, 6)):
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    return Grid(shape, affine, header, "x")


def test_canonical_round_trip_for_every_axis_order():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 9, (4, 5, 6))
    perm = np.eye(4)[[1, 2, 0, 3]]  # voxel axes permuted and flipped
    for affine in (np.diag([-1.0, -1, 1, 1]), np.diag([1.0, 1, 1, 1]), perm @ np.diag([-1.0, 1, -1, 1])):
        grid = _grid(affine)
        np.testing.assert_array_equal(from_canonical(to_canonical(data, grid), grid), data)


def test_lps_to_ras_flips_x_and_y():
    data = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    canonical = to_canonical(data, _grid(np.diag([-1.0, -1, 1, 1])))
    np.testing.assert_array_equal(canonical, data[::-1, ::-1, :])


def test_flipped_affine_copy_gives_the_same_world_space_case(msd_dir, tmp_path):
    """Rewriting a case with its x axis stored the other way round (same world positions) changes nothing."""
    image_path = msd_dir / "imagesTr" / "BRATS_001.nii.gz"
    label_path = msd_dir / "labelsTr" / "BRATS_001.nii.gz"
    flip = np.diag([-1.0, 1, 1, 1])
    copies = []
    for path in (image_path, label_path):
        img = nib.load(path)
        data = np.asarray(img.dataobj)[::-1]
        n = data.shape[0]
        flip[0, 3] = n - 1  # voxel i' = n-1-i maps to the same world point
        out = tmp_path / path.name.replace(".nii", f"_{path.parent.name}.nii")
        nib.save(nib.Nifti1Image(data, img.affine @ flip), out)
        copies.append(out)
    original = load_case(CaseFiles("a", (image_path,), label_path, "msd"))
    flipped = load_case(CaseFiles("b", (copies[0],), copies[1], "msd"))
    assert not np.allclose(original.grid.affine, flipped.grid.affine)
    np.testing.assert_array_equal(original.labels, flipped.labels)
    np.testing.assert_allclose(original.image, flipped.image)


def test_save_keeps_grid_and_is_atomic(msd_dir, tmp_path):
    data, grid = load_nifti(msd_dir / "labelsTr" / "BRATS_002.nii.gz")
    out = save_nifti(tmp_path / "sub" / "mask.nii.gz", data, grid)
    back = nib.load(out)
    np.testing.assert_array_equal(back.affine, grid.affine)
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    assert [p.name for p in out.parent.iterdir()] == ["mask.nii.gz"]  # no temporary left behind
