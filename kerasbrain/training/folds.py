"""Seeded k-fold cross-validation splits of a dataset's training cases, saved once per dataset.

As nnU-Net's `splits_final.json`: every configuration trained on a dataset reuses the same folds,
so their out-of-fold predictions cover the same cases and can be compared and ensembled. The file
lives beside the data (`kerasbrain_folds.json` in the dataset folder, or where `[data] folds_file`
says), is written once and read by every later run; a file that names cases the dataset no longer
has is refused in one line rather than silently re-split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerasbrain.training.split import stratum_groups

FOLDS_FILE = "kerasbrain_folds.json"


def kfold_splits(case_ids: list[str], folds: int, seed: int,
                 strata: dict[str, str] | None = None) -> list[dict[str, list[str]]]:
    """`folds` splits {"train", "validation"}; each case is validated in exactly one fold (sizes differ
    by <= 1). With `strata` (`split.case_strata`) each kind of case is dealt across the folds in turn,
    so no fold's training lacks a kind that has at least two cases."""
    ids = sorted(case_ids)
    if not 2 <= folds <= len(ids):
        raise ValueError(f"cross-validation needs 2 <= folds <= cases; got {folds} folds for {len(ids)} cases")
    rng = np.random.default_rng(seed)
    shuffled = []
    for group in stratum_groups(ids, strata):
        shuffled += [group[i] for i in rng.permutation(len(group))]
    splits = []
    for k in range(folds):
        validation = sorted(shuffled[k::folds])
        splits.append({"train": [i for i in ids if i not in set(validation)], "validation": validation})
    return splits


def check_fold(fold: int, folds: int) -> None:
    """Refuse a fold number outside the configured k (one line naming both)."""
    if not 0 <= fold < folds:
        raise ValueError(f"--fold must be in 0..{folds - 1} ([data] folds = {folds}). Received: {fold}")


def folds_path(data_dir, folds_file: str = "") -> Path:
    return Path(folds_file) if folds_file else Path(data_dir) / FOLDS_FILE


def load_or_create_folds(path: Path, case_ids: list[str], folds: int, seed: int,
                         strata: dict[str, str] | None = None) -> list[dict[str, list[str]]]:
    """The dataset's folds: read from `path`, or created with `seed` and written there (atomically)."""
    path = Path(path)
    if path.exists():
        data = json.loads(path.read_text())
        splits = data["folds"]
        named = {c for s in splits for c in s["validation"]}
        missing = sorted(named - set(case_ids))
        if missing:
            raise ValueError(f"{path}: folds name cases not in the dataset: {missing[:5]}")
        if len(splits) != folds:
            raise ValueError(f"{path}: holds {len(splits)} folds, the config asks for {folds}; "
                             "use another [data] folds_file for another k")
        return splits
    splits = kfold_splits(case_ids, folds, seed, strata)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps({"folds": splits, "seed": seed}, indent=2))
    staging.replace(path)
    return splits
