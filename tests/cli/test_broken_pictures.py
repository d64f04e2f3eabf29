"""A corpus of broken and unusual 2-D pictures (TIFF/PNG/JPEG slices, images and masks), built from
valid phantoms, through every command that reads them: `predict` (local and `--server`), `explain`,
`evaluate` and `train` of each family, plus `synth`'s targets.

Contract (issue 12): a broken input exits 1 with one line naming the file and what is wrong, no
traceback and no output file or run folder; an unusual but valid one gives the plain file's result.
"""

import re
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import TINY_MULTITASK_TOML, TINY_UNET3D_TOML, make_run, once_on

#: Nothing listens there: a broken input must be refused before the client sends anything.
CLOSED_PORT = "http://127.0.0.1:9"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_refused(result, path, message):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, (path.name, result.output)
    assert "Traceback" not in result.output and len(lines) == 1, (path.name, result.output)
    assert path.name in lines[0] and re.search(message, lines[0]), (path.name, lines[0])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    assert run("synth", "lgg", "--patients", 5, "--slices", 2, "--image-size", 64, "--out", root / "lgg",
               "--seed", 3).exit_code == 0
    assert run("synth", "brisc", "--per-class", 4, "--out", root / "brisc", "--seed", 3).exit_code == 0
    return root


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    import keras

    from kerasbrain.models.unet import UNet

    keras.utils.set_random_seed(3)
    model = UNet(spatial_dims=2, in_channels=3, out_channels=1, base_filters=4, depth=2, norm="group")
    return make_run(tmp_path_factory.mktemp("slice-model") / "slices", "unet2d", model,
                    {"model": {"base_filters": 4, "depth": 2, "norm": "group"}})


def served_model(saved_models, name, manifest):
    """What the client reads of an exported model (`export/layout`): the newest version's manifest."""
    import json

    (saved_models / name / "1" / "assets.extra").mkdir(parents=True)
    (saved_models / name / "1" / "assets.extra" / "kerasbrain.json").write_text(json.dumps(manifest))


def source_slice(data):
    return sorted((data / "lgg" / "kaggle_3m").rglob("*_1.tif"))[0]


def broken_pictures(folder, source):
    """{file: what the error must say} for each broken kind, made from the valid picture `source`."""
    bgr = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    cases = {}
    for suffix in (".tif", ".png", ".jpg"):
        whole = folder / f"whole{suffix}"
        cv2.imwrite(str(whole), bgr)
        raw = whole.read_bytes()
        (folder / f"truncated{suffix}").write_bytes(raw[: len(raw) // 2])
        whole.unlink()
        cases[folder / f"truncated{suffix}"] = "truncated|cannot be decoded"
    (folder / "empty.png").write_bytes(b"")
    cases[folder / "empty.png"] = "the file is empty"
    (folder / "text.png").write_text("this is not a picture\n")
    cases[folder / "text.png"] = "not a TIFF, PNG or JPEG picture"
    (folder / "folder.png").mkdir()
    cases[folder / "folder.png"] = "not a file"
    cv2.imwrite(str(folder / "float.tif"), bgr.astype(np.float32) / 255)
    cases[folder / "float.tif"] = "float32 pixels are not supported"
    return cases


def unusual_pictures(folder, source):
    """Valid pictures that must read as `source` does: 16-bit (x 257), RGBA, PNG instead of TIFF."""
    bgr = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(folder / "sixteen_bit.png"), bgr.astype(np.uint16) * 257)
    alpha = np.full(bgr.shape[:2] + (1,), 200, np.uint8)
    cv2.imwrite(str(folder / "rgba.png"), np.concatenate([bgr, alpha], axis=-1))
    cv2.imwrite(str(folder / "same.png"), bgr)
    return [folder / "sixteen_bit.png", folder / "rgba.png", folder / "same.png"]


@pytest.mark.parametrize("model", ["slices", "multitask", "multitask --server"])
def test_every_broken_picture_gives_one_line_naming_it_and_writes_nothing(model, data, slice_run, multitask_run,
                                                                         tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    run_dir = slice_run if model == "slices" else multitask_run
    server = []
    if model.endswith("--server"):  # a served model as the client sees it: its manifest
        served_model(tmp_path / "saved", "tumours", {"family": "multitask", "image_size": 64})
        run_dir, server = "tumours", ["--server", CLOSED_PORT, "--saved-models", tmp_path / "saved"]
    cases = broken_pictures(folder, source_slice(data))
    for path, message in cases.items():
        out = tmp_path / "out" / f"{path.stem}.png"
        result = run("predict", "--model", run_dir, "--input", path, "--out", out, *server)
        assert_refused(result, path, message)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), path.name
    assert len(cases) == 7


@once_on("jax")  # the picture readers (OpenCV, numpy); prediction itself is tested on both backends
def test_unusual_but_valid_pictures_predict_as_the_plain_file(data, slice_run, multitask_run, tmp_path):
    source = source_slice(data)
    for run_dir in (slice_run, multitask_run):
        expected = tmp_path / f"{run_dir.name}_plain.png"
        assert run("predict", "--model", run_dir, "--input", source, "--out", expected).exit_code == 0
        mask = "_mask" if run_dir == multitask_run else ""
        plain = cv2.imread(str(expected.with_name(expected.stem + mask + ".png")), cv2.IMREAD_UNCHANGED)
        for path in unusual_pictures(tmp_path, source):
            out = tmp_path / f"{run_dir.name}_{path.stem}.png"
            result = run("predict", "--model", run_dir, "--input", path, "--out", out)
            assert result.exit_code == 0, (path.name, result.output)
            written = cv2.imread(str(out.with_name(out.stem + mask + ".png")), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(written, plain, err_msg=f"{run_dir.name}: {path.name}")


def test_a_truth_mask_of_another_size_is_refused_before_anything_is_written(data, slice_run, tmp_path):
    wrong = tmp_path / "small_mask.png"
    cv2.imwrite(str(wrong), np.zeros((32, 32), np.uint8))
    out = tmp_path / "out" / "mask.png"
    result = run("predict", "--model", slice_run, "--input", source_slice(data), "--truth", wrong, "--out", out)
    assert_refused(result, wrong, "mask is 32x32 but its image is 64x64")
    assert not (tmp_path / "out").exists()


def test_explain_refuses_a_broken_picture(multitask_run, tmp_path):
    path = tmp_path / "truncated.png"
    cv2.imwrite(str(path), np.zeros((64, 64, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    result = run("explain", "--model", multitask_run, "--input", path, "--out", tmp_path / "heat.png")
    assert_refused(result, path, "the PNG is truncated")
    assert not (tmp_path / "heat.png").exists()


def test_evaluate_names_a_mask_of_another_size_and_scores_the_rest(data, slice_run, tmp_path):
    lgg = tmp_path / "lgg"
    shutil.copytree(data / "lgg", lgg)
    mask = sorted(lgg.rglob("*_2_mask.tif"))[-1]
    cv2.imwrite(str(mask), np.zeros((100, 100), np.uint8))
    result = run("evaluate", "--model", slice_run, "--data", lgg, "--out", tmp_path / "eval")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{mask.name}: mask is 100x100 but its image is 64x64" in result.output
    assert "1 case(s) could not be scored" in result.output
    assert (tmp_path / "eval" / "summary.json").exists()  # the others were scored


def _break(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize("family", ["unet2d", "multitask", "classifier", "segmenter", "simclr", "unet3d"])
def test_training_on_a_broken_file_stops_before_the_first_epoch_and_leaves_no_run_folder(family, data, msd_dir,
                                                                                         tmp_path):
    """Every file a trainer reads (training, validation, the SimCLR probe's test images) is read before
    the first epoch, so a broken one costs seconds, not a night of training."""
    config = tmp_path / "tiny.toml"
    if family == "unet3d":
        shutil.copytree(msd_dir, tmp_path / "data")
        broken = _break(sorted((tmp_path / "data" / "imagesTr").glob("*.nii.gz"))[-1])  # the last case read
        config.write_text(TINY_UNET3D_TOML)
        message = "cannot be read as NIfTI|truncated"
    elif family == "unet2d":
        shutil.copytree(data / "lgg", tmp_path / "data")
        broken = _break(sorted((tmp_path / "data").rglob("*_2.tif"))[-1])
        config.write_text("[model]\nbase_filters = 4\ndepth = 2\n[[stages]]\nepochs = 1\n")
        message = "not a TIFF, PNG or JPEG|cannot be decoded"
    else:
        shutil.copytree(data / "brisc", tmp_path / "data")
        subset = "test" if family == "simclr" else "train"  # SimCLR's probe reads the test images
        broken = _break(sorted((tmp_path / "data").rglob(f"classification_task/{subset}/*/*.jpg"))[-1])
        config.write_text(TINY_MULTITASK_TOML if family != "simclr" else "[data]\nimage_size = 64\n")
        message = "the JPEG is truncated"
    stage = "pretrain" if family == "simclr" else "train"
    result = run(stage, family, "--data", tmp_path / "data", "--config", config, "--out", tmp_path / "run")
    assert result.exit_code == 1, result.output
    assert "Epoch 1" not in result.output, result.output
    last = result.output.strip().splitlines()[-1]
    assert "Traceback" not in result.output and broken.name in last and re.search(message, last), result.output
    assert not (tmp_path / "run").exists()


def test_synth_refuses_a_target_it_cannot_write_with_one_line(tmp_path):
    taken = tmp_path / "a_file"
    taken.write_text("not a folder")
    result = run("synth", "msd", "--out", taken, "--cases", 1)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "a_file" in lines[0], result.output
    inside = taken / "sub"
    result = run("synth", "lgg", "--out", inside, "--patients", 1)
    assert result.exit_code == 1 and "a_file" in result.output and "Traceback" not in result.output, result.output
    result = run("synth", "msd", "--out", tmp_path / "tiny", "--cases", 1, "--shape", 8, 8, 0)
    assert result.exit_code == 1 and "--shape" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "tiny").exists()


def test_synth_that_fails_half_way_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno

    from kerasbrain.data import phantom

    made = []
    real = phantom.GENERATORS["shapes"]

    def disk_fills_at_the_second_case(*args, **kwargs):
        made.append(1)
        if len(made) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "msd" / "BRATS_002.nii.gz"))
        return real(*args, **kwargs)

    monkeypatch.setitem(phantom.GENERATORS, "shapes", disk_fills_at_the_second_case)
    (tmp_path / "msd").mkdir()
    (tmp_path / "msd" / "notes.txt").write_text("kept")
    result = run("synth", "msd", "--out", tmp_path / "msd", "--cases", 3, "--shape", 16, 16, 16)
    assert result.exit_code == 1 and "No space left on device" in result.output.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msd"]  # no staged folder left
    assert sorted(p.name for p in (tmp_path / "msd").iterdir()) == ["notes.txt"]  # no half dataset
    monkeypatch.setattr(phantom, "make_phantom", real)
    result = run("synth", "msd", "--out", tmp_path / "msd", "--cases", 1, "--shape", 16, 16, 16)
    assert result.exit_code == 0 and result.output.strip().splitlines()[-1] == str(tmp_path / "msd")
    assert sorted(p.name for p in (tmp_path / "msd").iterdir()) == ["dataset.json", "imagesTr", "labelsTr", "notes.txt"]
