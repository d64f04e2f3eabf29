"""Seeded case-level train/validation split, saved with the run so a resumed run reuses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def split_cases(case_ids: list[str], validation_fraction: float, seed: int) -> dict[str, list[str]]:
    """Shuffle case ids with `seed` and hold out round(fraction * n) of them (at least 1 when n > 1)."""
    ids = sorted(case_ids)
    if validation_fraction <= 0 or len(ids) < 2:
        return {"train": ids, "validation": []}
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(max(int(round(validation_fraction * len(ids))), 1), len(ids) - 1)
    val = sorted(ids[i] for i in order[:n_val])
    return {"train": [i for i in ids if i not in val], "validation": val}


def load_or_create_split(path: Path, case_ids: list[str], validation_fraction: float, seed: int):
    """Reuse `path` if it exists (and still matches the dataset), else create and save it."""
    if path.exists():
        split = json.loads(path.read_text())
        missing = set(split["train"] + split["validation"]) - set(case_ids)
        if missing:
            raise ValueError(f"{path}: split names cases not in the dataset: {sorted(missing)[:5]}")
        return split
    split = split_cases(case_ids, validation_fraction, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split, indent=2))
    return split
