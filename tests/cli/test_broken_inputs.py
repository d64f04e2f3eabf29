"""A corpus of broken and unusual NIfTI inputs, built from a valid phantom, through `predict` and `evaluate`.

Contract: a broken input exits 1 with one line naming the file and what is wrong, no traceback and
no output file; an unusual but valid one gives the same prediction as the plain file.
"""

import gzip
import io
import re
import shutil

import cv2
import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def source(msd_dir):
    return msd_dir / "imagesTs" / "BRATS_004.nii.gz"


def _save(path, data, affine, header=None, dtype=None):
    image = nib.Nifti1Image(data if dtype is None else data.astype(dtype), affine, header)
    if dtype is not None:
        image.set_data_dtype(dtype)
    nib.save(image, path)
    return path


def broken_inputs(folder, source):
    """(file, what the error must say) for each broken kind."""
    image = nib.load(source)
    data, affine = np.asarray(image.dataobj, dtype=np.float32), image.affine
    raw = source.read_bytes()
    cases = {}

    def add(name, content, message):
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        cases[path] = message

    add("truncated.nii.gz", raw[: len(raw) // 3], "truncated|cannot be read")
    # cut so short that its header promises more than deflate could hold: told in the file's own units
    add("truncated_short.nii.gz", raw[:600], r"truncated, or its header is wrong: the header promises [0-9.]+ kB of "
        r"voxels \(shape \(41, 38, 35, 4\)\), more than a 600 bytes gzip file can hold")
    add("not_gzip.nii.gz", b"this is not a gzip stream at all" * 10, "cannot be read as NIfTI")
    add("empty.nii.gz", b"", "the file is empty")
    (folder / "folder.nii.gz").mkdir()
    cases[folder / "folder.nii.gz"] = "not a BraTS case folder|not a file"
    header = bytearray(gzip.decompress(raw))
    header[:348] = bytes(348)
    add("zeroed_header.nii.gz", gzip.compress(bytes(header)), "cannot be read as NIfTI")
    huge = nib.Nifti1Image(data[:2, :2, :2], affine)
    huge.header.set_data_shape((30000, 30000, 30000, 4))
    body = bytearray(gzip.decompress(raw))
    body[:348] = huge.header.binaryblock[:348]
    add("huge_header.nii.gz", gzip.compress(bytes(body)), "header promises .* GB of voxels")
    nan = data.copy()
    nan[5, 5, 5, 0] = np.nan
    _save(folder / "nan.nii.gz", nan, affine)
    cases[folder / "nan.nii.gz"] = "1 NaN/Inf voxels"
    _save(folder / "three_d.nii.gz", data[..., 0], affine)
    cases[folder / "three_d.nii.gz"] = "expected a 4-D volume"
    _save(folder / "three_modalities.nii.gz", data[..., :3], affine)
    cases[folder / "three_modalities.nii.gz"] = "expected 4 modalities in the last axis, found 3"
    _save(folder / "five_d.nii.gz", data[..., None], affine)
    cases[folder / "five_d.nii.gz"] = "expected a 4-D volume, found shape"
    def with_sform(name, rows):  # the header's voxel-to-world rows replaced; nibabel would refuse to write them
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(gzip.decompress(raw)))
        header["qform_code"], header["sform_code"] = 0, 1
        header["srow_x"], header["srow_y"], header["srow_z"] = rows
        add(name, gzip.compress(header.binaryblock + gzip.decompress(raw)[348:]), "")

    with_sform("singular_affine.nii.gz", [[0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3]])
    cases[folder / "singular_affine.nii.gz"] = "affine .* is singular"
    with_sform("nan_affine.nii.gz", [[1, 0, 0, np.nan], [0, 1, 0, 0], [0, 0, 1, 0]])
    cases[folder / "nan_affine.nii.gz"] = "affine .* NaN or Inf"
    cv2.imwrite(str(folder / "picture.png"), np.zeros((16, 16), np.uint8))
    cases[folder / "picture.png"] = "picture.png"
    return cases


@pytest.mark.parametrize("where", ["local", "server"])
def test_every_broken_nifti_gives_one_line_naming_it_and_writes_nothing(where, tmp_path, source, volume_run):
    folder = tmp_path / "corpus"
    folder.mkdir()
    handled = []
    # --server: nothing listens on port 9 (discard), so the client must refuse the file before sending
    model = [volume_run] if where == "local" else ["brain", "--server", "http://127.0.0.1:9"]
    for path, message in broken_inputs(folder, source).items():
        out = tmp_path / "out" / f"{path.name.split('.')[0]}_seg.nii.gz"
        result = run("predict", "--model", *model, "--input", path, "--out", out)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1, (path.name, result.output)
        assert "Traceback" not in result.output and len(lines) == 1, (path.name, result.output)
        assert path.name in lines[0], (path.name, lines[0])
        assert re.search(message, lines[0]), (path.name, lines[0])
        assert not out.exists() and not out.with_suffix("").with_suffix(".png").exists()
        handled.append(path.name)
    assert len(handled) == 14


@pytest.mark.parametrize("input_is", ["case", "folder"])
def test_an_output_under_a_file_is_refused_before_the_model_runs(input_is, tmp_path, source, volume_run):
    """Not "File exists" after the prediction: one line naming the output and the file in its way."""
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / ("seg.nii.gz" if input_is == "case" else "predictions")
    result = run("predict", "--model", volume_run, "--input", source if input_is == "case" else source.parent,
                 "--out", out)
    assert result.exit_code == 1 and "window" not in result.output, result.output  # no window was predicted
    assert result.output.strip() == f"Error: {out}: cannot be written: {tmp_path / 'afile'} is a file, not a folder"


@once  # the NIfTI reader (nibabel, numpy); prediction itself is tested on both backends
def test_unusual_but_valid_niftis_predict_as_the_plain_file(tmp_path, source, volume_run):
    image = nib.load(source)
    data, affine = np.asarray(image.dataobj, dtype=np.float32), image.affine
    plain = tmp_path / "plain_seg.nii.gz"
    assert run("predict", "--model", volume_run, "--input", source, "--out", plain).exit_code == 0
    expected = np.asarray(nib.load(plain).dataobj)
    variants = {
        "float64.nii.gz": lambda p: _save(p, data, affine, dtype=np.float64),
        "uncompressed.nii": lambda p: _save(p, data, affine),
        "copy.nii.gz": lambda p: shutil.copyfile(source, p),
    }
    for name, make in variants.items():
        path = tmp_path / name
        make(path)
        out = tmp_path / f"{name.split('.')[0]}_seg.nii.gz"
        result = run("predict", "--model", volume_run, "--input", path, "--out", out)
        assert result.exit_code == 0, (name, result.output)
        np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), expected, err_msg=name)
    # int16 with a scale factor: the same values to within the rounding, so nearly the same labels
    scaled = nib.Nifti1Image(np.round(data * 10).astype(np.int16), affine)
    scaled.header.set_slope_inter(0.1, 0.0)
    nib.save(scaled, tmp_path / "scaled.nii.gz")
    out = tmp_path / "scaled_seg.nii.gz"
    assert run("predict", "--model", volume_run, "--input", tmp_path / "scaled.nii.gz", "--out", out).exit_code == 0
    assert (np.asarray(nib.load(out).dataobj) == expected).mean() > 0.99
    # an oblique affine: written back in the input's own grid, with its affine
    oblique = affine.copy()
    angle = np.deg2rad(12)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    oblique[:3, :3] = rotation @ affine[:3, :3]
    _save(tmp_path / "oblique.nii.gz", data, oblique)
    out = tmp_path / "oblique_seg.nii.gz"
    assert run("predict", "--model", volume_run, "--input", tmp_path / "oblique.nii.gz", "--out", out).exit_code == 0
    written = nib.load(out)
    np.testing.assert_allclose(written.affine, oblique, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(written.dataobj), expected)


def test_a_label_map_of_another_shape_is_named_by_evaluate(tmp_path, msd_dir, volume_run):
    copy = tmp_path / "Task01_BrainTumour"
    shutil.copytree(msd_dir, copy)
    label = copy / "labelsTr" / "BRATS_002.nii.gz"
    image = nib.load(label)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:-3], image.affine), label)
    result = run("evaluate", "--model", volume_run, "--data", copy, "--out", tmp_path / "eval")
    assert result.exit_code == 1 and "BRATS_002" in result.output and "Traceback" not in result.output
    assert "1 case(s) could not be scored" in result.output
