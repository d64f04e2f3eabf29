"""k-fold cross-validation: the dataset's shared folds, `train unet3d --fold`, and out-of-fold probabilities."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.training.folds import FOLDS_FILE, kfold_splits, load_or_create_folds
from tests.conftest import TINY_UNET3D_TOML, once


def test_every_case_is_validated_in_exactly_one_fold():
    ids = [f"case_{i}" for i in range(7)]
    splits = kfold_splits(ids, 3, seed=4)
    validated = [c for s in splits for c in s["validation"]]
    assert sorted(validated) == ids and len(set(validated)) == 7
    assert sorted(len(s["validation"]) for s in splits) == [2, 2, 3]
    for s in splits:
        assert sorted(s["train"] + s["validation"]) == ids and not set(s["train"]) & set(s["validation"])
    assert kfold_splits(list(reversed(ids)), 3, seed=4) == splits  # the case order given does not matter
    assert kfold_splits(ids, 3, seed=5) != splits
    with pytest.raises(ValueError, match="2 <= folds <= cases"):
        kfold_splits(ids[:2], 3, seed=0)


def test_the_folds_file_is_written_once_and_then_read(tmp_path):
    path = tmp_path / FOLDS_FILE
    ids = [f"c{i}" for i in range(6)]
    first = load_or_create_folds(path, ids, 3, seed=0)
    assert load_or_create_folds(path, ids, 3, seed=99) == first  # another seed later: the saved folds win
    assert json.loads(path.read_text())["seed"] == 0
    with pytest.raises(ValueError, match="folds name cases not in the dataset"):
        load_or_create_folds(path, ids[1:], 3, seed=0)
    with pytest.raises(ValueError, match="holds 3 folds, the config asks for 2"):
        load_or_create_folds(path, ids, 2, seed=0)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _fold_args(data, config, out):
    return ("train", "unet3d", "--data", data, "--config", config, "--out", out, "--epochs", 1,
            "--steps-per-epoch", 2, "--fold", "all")


@pytest.fixture(scope="module")
def two_configurations(msd_dir, tmp_path_factory):
    """Two configurations (seeds 1 and 2) trained on every fold of one copy of the data: both tests
    below read them (the first checks and resumes `cv_a`; the second scores and ensembles both)."""
    root = tmp_path_factory.mktemp("folds")
    data = root / "Task01_BrainTumour"
    shutil.copytree(msd_dir, data)
    for name, seed in (("cv_a", 1), ("cv_b", 2)):
        config = TINY_UNET3D_TOML.replace("[training]\n", f"[training]\nseed = {seed}\n") + "[data]\nfolds = 2\n"
        (root / f"{name}.toml").write_text(config)
        result = run(*_fold_args(data, root / f"{name}.toml", root / name))
        assert result.exit_code == 0, result.output
    return root, data


@once  # the folds' glue; training, prediction and ensembles are tested on both backends elsewhere
def test_train_every_fold_keeps_out_of_fold_probabilities_and_resumes(two_configurations):
    from kerasbrain.data.layouts import discover
    from kerasbrain.evaluation.out_of_fold import read_out_of_fold
    from kerasbrain.families.unet3d import FAMILY
    from kerasbrain.inference.predict_volume import predict_case

    root, data = two_configurations
    args = _fold_args(data, root / "cv_a.toml", root / "cv_a")
    folds = json.loads((data / FOLDS_FILE).read_text())["folds"]  # beside the data, for every configuration
    cases = {c.case_id: c for c in discover(data).labelled()}
    assert sorted(c for f in folds for c in f["validation"]) == sorted(cases)
    for k, fold in enumerate(folds):
        run_dir = root / "cv_a" / f"fold_{k}"
        assert json.loads((run_dir / "split.json").read_text()) == fold
        _, session = FAMILY.local_session(run_dir / "best.keras")
        for case_id in fold["validation"]:  # what the fold's own model predicts for a case it never saw
            from kerasbrain.data.layouts import load_case

            stored = read_out_of_fold(run_dir / "oof" / f"{case_id}.npz")
            _, expected = predict_case(load_case(cases[case_id]), session.predict, session.channels, session.config,
                                       session.spacing)
            assert stored.shape == expected.shape and np.abs(stored - expected).max() <= 1e-3  # float16 storage
    mtimes = {p: p.stat().st_mtime_ns for p in (root / "cv_a").glob("fold_*/oof/*.npz")}
    result = run(*args)  # everything done: nothing is trained or predicted again
    assert result.exit_code == 0, result.output
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    result = CliRunner().invoke(cli, [str(a) for a in args[:-1]] + ["7"])
    assert result.exit_code == 1 and "--fold must be in 0..1" in result.output
    assert sorted(p.name for p in (root / "cv_a").iterdir() if p.name.startswith("fold_")) == ["fold_0", "fold_1"]


@once
def test_crossval_scores_configurations_and_ensembles_and_its_winner_predicts(two_configurations, tmp_path):
    """Two configurations on the same folds: each alone and their ensemble, scored by hand here too."""
    from kerasbrain.data.labels import regions_to_labels
    from kerasbrain.data.layouts import discover, load_case
    from kerasbrain.evaluation.out_of_fold import read_out_of_fold
    from kerasbrain.families.unet3d import FAMILY
    from kerasbrain.inference.postprocess import MIN_PART_ML, region_dice, remove_specks
    from kerasbrain.inference.predict_volume import predict_case

    root, data = two_configurations
    result = run("crossval", root / "cv_a", root / "cv_b", "--data", data, "--out", tmp_path / "best")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "best" / "crossval.json").read_text())
    import cv2

    assert cv2.imread(str(tmp_path / "best" / "crossval.png")).shape[0] == 100 + 45 * 3  # one row of bars each
    rows = {r["candidate"]: r for r in report["candidates"]}
    assert set(rows) == {"cv_a", "cv_b", "cv_a + cv_b"}
    cases = {c.case_id: c for c in discover(data).labelled()}
    oof = {name: {p.stem: p for p in (root / name).glob("fold_*/oof/*.npz")} for name in ("cv_a", "cv_b")}
    by_hand = []  # the ensemble without the chosen rules: mean probabilities, thresholded, specks gone, Dice
    for case_id in report["cases"]:
        mean = (read_out_of_fold(oof["cv_a"][case_id]) + read_out_of_fold(oof["cv_b"][case_id])) / 2
        case = load_case(cases[case_id])
        raw = remove_specks(regions_to_labels(mean >= 0.5), case.grid.spacing, MIN_PART_ML)
        by_hand.append(np.mean(region_dice(raw, case.labels)))
    assert rows["cv_a + cv_b"]["score_off"] == pytest.approx(np.mean(by_hand), abs=1e-9)
    best = max(rows.values(), key=lambda r: (r["score"], -len(r["members"])))
    assert report["best"] == best["candidate"] and best["score"] >= best["score_off"]
    ensemble = json.loads((tmp_path / "best" / "ensemble.json").read_text())
    assert len(ensemble["members"]) == 2 * len(best["members"]) and ensemble["candidate"] == best["candidate"]
    assert sum(m["weight"] for m in ensemble["members"]) == pytest.approx(1.0)
    # the ensemble file is a model: its probabilities are its members' weighted mean
    _, session = FAMILY.local_session(tmp_path / "best" / "ensemble.json")
    case = load_case(cases[report["cases"][0]])
    _, probabilities = predict_case(case, session.predict, session.channels, session.config, session.spacing)
    expected = 0
    for member in ensemble["members"]:
        _, member_session = FAMILY.local_session(member["model"])
        expected = expected + member["weight"] * predict_case(case, member_session.predict, 3, session.config,
                                                              session.spacing)[1]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert session.config.min_component_ml == best["min_component_ml"]
    result = run("evaluate", "--model", tmp_path / "best" / "ensemble.json", "--data", data, "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    # its uncertainty spans every network and mirror view; the label map is the ensemble's mirror TTA
    result = run("predict", "--model", tmp_path / "best" / "ensemble.json", "--input", cases[case.case_id].images[0],
                 "--out", tmp_path / "u" / "seg.nii.gz", "--uncertainty")
    assert result.exit_code == 0, result.output
    networks = len(ensemble["members"])
    assert f"uncertainty over 8 mirror views x {networks} networks" in result.output
    unc = json.loads((tmp_path / "u" / "seg_report.json").read_text())["uncertainty"]
    assert (unc["members"], unc["networks"]) == (8 * networks, networks)
    assert nib.load(tmp_path / "u" / "seg_variance.nii.gz").get_fdata().max() > 0
    # exported, the ensemble is one SavedModel: the whole case averaged in the graph
    import tensorflow as tf

    result = run("export", "--model", tmp_path / "best" / "ensemble.json", "--name", "ens", "--root",
                 tmp_path / "saved", "--no-warmup")
    assert result.exit_code == 0, result.output
    served = tf.saved_model.load(str(tmp_path / "saved" / "ens" / "1")).signatures["segment_case"]
    from kerasbrain.data.preprocess import preprocess_case

    pre = preprocess_case(case, None, normalize=False)
    crop = served(image=tf.constant(pre.image[None]))["probabilities"].numpy()[0]
    box = tuple(slice(a, b) for a, b in pre.bbox)
    # the exported graph orders sums its own way (exported from JAX, at the suite's LLVM level 1, 11 of
    # 54,432 values were once up to 9e-5 apart); a missing or misweighted member moves them by 1e-2 and more
    np.testing.assert_allclose(crop, expected[box], atol=2e-4)
    result = CliRunner().invoke(cli, ["crossval", str(root / "cv_a"), "--data", str(data), "--out",
                                      str(tmp_path / "x"), "--metric", "lesion"])
    assert result.exit_code == 0 and "lesion-wise Dice" in result.output, result.output
