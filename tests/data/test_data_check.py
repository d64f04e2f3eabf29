"""`kerasbrain data check` on phantoms with known faults: each fault is named in one line, a clean
dataset passes, and the counts are the ones written."""

import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.data.check import check_dataset, pixel_hash
from kerasbrain.data.near_copies import near_copies, thumbnail


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _problems(output):
    return [line for line in output.splitlines() if line.startswith("problem: ")]


def test_a_clean_msd_dataset_passes_with_its_counts(msd_dir, tmp_path):
    result = run("data", "check", msd_dir, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    cases = report["stats"]["cases"]
    images = sorted(p.name for p in (msd_dir / "imagesTr").glob("*.nii.gz"))
    assert report["counts"]["labelled"] == len(images) and report["problems"] == []
    assert {c["modalities"] for c in cases} == {4} and all(c["orientation"] == "LPS" for c in cases)
    import nibabel as nib

    for c in (c for c in cases if c["labelled"]):  # the counts are the label file's, read independently
        truth = nib.load(msd_dir / "labelsTr" / f"{c['case']}.nii.gz")
        values = np.asarray(truth.dataobj)
        counts = {int(k): v for k, v in c["label_counts"].items()}
        assert sum(counts.values()) == values.size and values.size - counts[0] == int((values > 0).sum())
        voxel_ml = float(np.prod(truth.header.get_zooms()[:3])) / 1000
        assert c["volume_ml"]["WT"] == pytest.approx(int((values > 0).sum()) * voxel_ml, abs=1e-3)
    assert (tmp_path / "report" / "report.png").stat().st_size > 10_000
    assert "## Problems (0)" in (tmp_path / "report" / "report.md").read_text()


def test_a_duplicate_across_splits_and_a_broken_case_are_problems(msd_dir, tmp_path):
    data = tmp_path / "Task01_BrainTumour"
    shutil.copytree(msd_dir, data)
    test_case = sorted((data / "imagesTs").glob("*.nii.gz"))[0]
    shutil.copyfile(data / "imagesTr" / "BRATS_001.nii.gz", test_case)  # a training case shipped as a test case
    broken = data / "imagesTr" / "BRATS_002.nii.gz"
    broken.write_bytes(broken.read_bytes()[:4000])
    result = run("data", "check", data, "--out", tmp_path / "report")
    assert result.exit_code == 1, result.output
    problems = _problems(result.output)
    assert len(problems) == 2, problems
    assert any("the same image in imagesTr and imagesTs" in p and "BRATS_001" in p and test_case.stem[:-4] in p
               for p in problems)
    assert any("BRATS_002.nii.gz" in p for p in problems)


def test_class_pictures_duplicated_between_train_and_test(tmp_path):
    from kerasbrain.data.phantom_classes import write_brisc

    root = write_brisc(tmp_path / "brisc", per_class=2, seed=1)
    train = sorted(root.rglob("classification_task/train/*/*.jpg"))
    test = sorted(root.rglob("classification_task/test/*/*.jpg"))
    same_class = root / "classification_task" / "test" / train[0].parent.name
    assert cv2.imwrite(str(same_class / "copy.png"), cv2.imread(str(train[0])))  # the same pixels, another format
    shutil.copyfile(train[0], same_class / ("again_" + train[0].name))  # a byte-identical copy
    report = check_dataset(tmp_path / "brisc", progress=None)
    duplicates = [p for p in report.problems if "in test and train" in p]
    assert len(duplicates) == 1, report.problems
    assert all(name in duplicates[0] for name in (f"train/{train[0].name}", "test/copy.png", f"test/again_{train[0].name}"))
    assert report.counts["train"] and sum(report.counts["test"].values()) == len(test) + 2


def test_a_lossy_copy_across_splits_is_found_and_distinct_pictures_are_not(tmp_path):
    """A JPEG re-encoding (quality 50) and a brighter copy: different pixels, so no hash finds them."""
    from kerasbrain.data.phantom_classes import write_brisc

    root = write_brisc(tmp_path / "brisc", per_class=3, seed=2)
    clean = check_dataset(tmp_path / "brisc", progress=None)
    assert not [line for line in clean.problems + clean.notes if "near cop" in line], clean.problems + clean.notes
    train = sorted(root.rglob("classification_task/train/*/*.jpg"))
    original = cv2.imread(str(train[0]))
    test_class = root / "classification_task" / "test" / train[0].parent.name
    assert cv2.imwrite(str(test_class / "reencoded.jpg"), original, [cv2.IMWRITE_JPEG_QUALITY, 50])
    brighter = np.clip(original.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(train[1].parent / "brighter.png"), brighter)
    report = check_dataset(tmp_path / "brisc", progress=None)
    near = [p for p in report.problems if "near copies" in p]  # one group: the original and both copies
    assert len(near) == 1 and "in test and train" in near[0], report.problems
    assert all(n in near[0] for n in (f"train/{train[0].name}", "test/reencoded.jpg", "brighter.png")), near
    assert not [n for n in report.notes if "near copies" in n]
    (test_class / "reencoded.jpg").unlink()  # the same two within train alone: a note, not a problem
    report = check_dataset(tmp_path / "brisc", progress=None)
    assert not [p for p in report.problems if "near copies" in p], report.problems
    within = [n for n in report.notes if "near copies" in n]
    assert len(within) == 1 and "within train" in within[0] and "brighter.png" in within[0], report.notes


def test_near_copies_known_answer():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(64, 64)).astype(np.float32)
    thumbs = {"a": thumbnail(base), "a_noisy": thumbnail(base + rng.normal(0, 0.05, size=base.shape)),
              "other": thumbnail(rng.normal(size=(64, 64)))}
    pairs = near_copies(thumbs, block=1)  # blocks of one row: the blocking changes nothing
    assert [(a, b) for a, b, _ in pairs] == [("a", "a_noisy")]
    expected = np.corrcoef(thumbs["a"], thumbs["a_noisy"])[0, 1]
    assert pairs[0][2] == pytest.approx(expected, abs=1e-5)


def test_lgg_slices_a_missing_mask_and_a_mask_of_another_size(tmp_path):
    from kerasbrain.data.phantom import write_lgg

    root = write_lgg(tmp_path / "lgg", patients=2, slices=3, shape=(64, 64), seed=2)
    clean = check_dataset(root, progress=None)
    assert clean.problems == [] and clean.counts["patients"] == 2 and clean.counts["slices"] == 6
    masks = sorted(root.rglob("*_mask.tif"))
    masks[0].unlink()
    cv2.imwrite(str(masks[1]), np.zeros((32, 32), np.uint8))
    report = check_dataset(root, progress=None)
    assert len(report.problems) == 2, report.problems
    assert any("has no mask" in p for p in report.problems)
    assert any(masks[1].name in p for p in report.problems)


def test_pixel_hash_sees_content_not_files(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert pixel_hash(a) == pixel_hash(a.copy()) != pixel_hash(a.reshape(4, 3)) != pixel_hash(a + 1)


def test_not_a_dataset_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("data", "check", tmp_path / "empty", "--out", tmp_path / "r")
    assert result.exit_code == 1 and result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
    # the line lists every layout `data check` reads, not only the last one it tried
    assert "MSD / BraTS / DICOM volumes, LGG kaggle_3m slices, BRISC 2025 or class folders" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("layout", ["brats2021"])
def test_brats_case_folders_are_checked_too(brats2021_dir, tmp_path, layout):
    report = check_dataset(brats2021_dir, progress=None)
    assert report.problems == [] and report.counts["labelled"] == report.counts["cases"] > 0
