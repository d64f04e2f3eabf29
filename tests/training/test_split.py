"""The run's validation split and the k folds, stratified by which labels each case holds."""

import json

import nibabel as nib
import numpy as np
import pytest

from kerasbrain.training.folds import kfold_splits
from kerasbrain.training.split import case_strata, describe_strata, split_cases, validation_quotas

COMMON, RARE = "NCR+ED+ET", "NCR+ED"


def _ids(n):
    return [f"case_{i:02d}" for i in range(n)]


def test_strata_are_named_by_the_labels_a_case_holds():
    strata = case_strata({"a": {3, 1, 2}, "b": {2, 1}, "c": set(), "d": {2}, "e": {2, 3, 1}})
    assert strata == {"a": COMMON, "b": RARE, "c": "none", "d": "ED", "e": COMMON}
    split = {"train": ["a", "b", "c", "d"], "validation": ["e"]}
    assert describe_strata(strata, split) == ("validation split by the labels each case holds: "
                                              "NCR+ED+ET 2 (1 held out), ED 1 (0 held out), NCR+ED 1 (0 held out), "
                                              "none 1 (0 held out)")


@pytest.mark.parametrize("sizes, n_val, expected", [
    ([15, 1], 3, [3, 0]),   # a kind of one case stays in training
    ([8, 2], 3, [2, 1]),    # exact shares 2.4 and 0.6: the larger remainder, the rare kind, gets the third
    ([10, 5, 1], 3, [2, 1, 0]),  # shares 1.875, 0.9375, 0.1875 -> floors 1, 0, 0, then remainders .94 and .88
    ([1, 1, 1], 1, [1, 0, 0]),  # only singletons: one must be held out all the same
    ([12], 3, [3]),
    ([10] + [1] * 10, 8, [8] + [0] * 10),  # the big group gives all 8 before any singleton is held out
    ([4, 1, 1, 1, 1, 1, 1], 5, [3, 1, 1, 0, 0, 0, 0]),  # it can give 3 only: then singletons must go
])
def test_validation_quotas_by_hand(sizes, n_val, expected):
    assert validation_quotas(sizes, n_val) == expected


def test_the_only_case_of_a_kind_is_never_held_out_and_each_kind_is_held_out_in_proportion():
    ids = _ids(16)
    strata = {c: (RARE if c == "case_07" else COMMON) for c in ids}
    for seed in range(40):
        split = split_cases(ids, 0.2, seed, strata)
        assert len(split["validation"]) == 3 and "case_07" in split["train"]
        assert sorted(split["train"] + split["validation"]) == ids
    two_rare = {c: (RARE if c in ("case_03", "case_09") else COMMON) for c in _ids(10)}
    for seed in range(40):
        held = split_cases(_ids(10), 0.3, seed, two_rare)["validation"]
        assert len(held) == 3 and sum(two_rare[c] == RARE for c in held) == 1
    drawn = {tuple(split_cases(ids, 0.2, seed, strata)["validation"]) for seed in range(40)}
    assert len(drawn) > 10  # still a seeded draw, not a fixed choice


def test_one_kind_of_case_splits_exactly_as_the_plain_seeded_shuffle():
    """Datasets whose cases all hold every label keep the split they always had."""
    ids = _ids(11)
    for seed in (0, 3, 17):
        order = np.random.default_rng(seed).permutation(11)
        plain = sorted(ids[i] for i in order[:2])
        assert split_cases(ids, 0.2, seed)["validation"] == plain
        assert split_cases(ids, 0.2, seed, {c: COMMON for c in ids})["validation"] == plain
        assert split_cases(list(reversed(ids)), 0.2, seed, {c: COMMON for c in ids})["validation"] == plain


def test_folds_deal_each_kind_across_the_folds():
    ids = _ids(17)
    rare = {"case_02", "case_05", "case_11", "case_16"}
    strata = {c: (RARE if c in rare else COMMON) for c in ids}
    for seed in range(20):
        splits = kfold_splits(ids, 3, seed, strata)
        validated = [c for s in splits for c in s["validation"]]
        assert sorted(validated) == ids
        assert sorted(len(s["validation"]) for s in splits) == [5, 6, 6]
        assert sorted(len(rare & set(s["validation"])) for s in splits) == [1, 1, 2]
        assert all(rare & set(s["train"]) for s in splits)
    plain = kfold_splits(ids, 3, 4)
    assert kfold_splits(ids, 3, 4, {c: COMMON for c in ids}) == plain  # one kind: the folds as before


def test_a_training_run_keeps_its_only_tumour_without_enhancement_in_training(tmp_path):
    """The real path: phantoms cached as training caches them, one of them relabelled to hold no
    enhancing tumour; its stratum comes from the cache and the run's split keeps it in training."""
    from kerasbrain.data.phantom import write_dataset
    from kerasbrain.data.preprocess import cached_labels_present
    from kerasbrain.training.config import Config, DataConfig
    from kerasbrain.training.train_unet3d import prepare_cases

    data = write_dataset(tmp_path / "Task01_Mixed", "msd", cases=6, shape=(28, 26, 24), seed=3)
    plain_split = split_cases([f"BRATS_{i:03d}" for i in range(1, 7)], 0.5, 0)
    without_et = plain_split["validation"][0]  # a plain split would hold it out
    path = data / "labelsTr" / f"{without_et}.nii.gz"
    image = nib.load(path)
    labels = np.asarray(image.dataobj).copy()
    for other in data.glob("labelsTr/*.nii.gz"):  # every phantom holds all three labels to begin with
        assert len(np.unique(np.asarray(nib.load(other).dataobj))) == 4, other
    labels[labels == 3] = 2  # MSD: 3 enhancing -> 2 non-enhancing core
    nib.save(nib.Nifti1Image(labels, image.affine), path)

    config = Config(data=DataConfig(validation_fraction=0.5, split_seed=0))
    said = []
    train, validation, split = prepare_cases(data, tmp_path / "run", config, progress=said.append)
    assert "validation split by the labels each case holds: NCR+ED+ET 5 (3 held out), NCR+ED 1 (0 held out)" in said
    assert without_et in split["train"] and len(split["validation"]) == 3
    assert json.loads((tmp_path / "run" / "split.json").read_text()) == split
    kinds = {f.name.split("-")[0]: cached_labels_present(f) for f in train + validation}
    assert kinds[without_et] == [1, 2] and all(v == [1, 2, 3] for c, v in kinds.items() if c != without_et)
    plain = Config(data=DataConfig(validation_fraction=0.5, split_seed=0, stratify_split=False))
    _, _, unstratified = prepare_cases(data, tmp_path / "plain_run", plain, progress=said.append)
    assert unstratified == plain_split and without_et in unstratified["validation"]
    meta = next(f for f in train if f.name.startswith(without_et)) / "meta.json"
    recorded = json.loads(meta.read_text())
    recorded.pop("labels_present")  # a cache written before meta.json recorded its labels
    meta.write_text(json.dumps(recorded))
    assert cached_labels_present(meta.parent) == [1, 2]
