"""Seeded case-level train/validation splits, stratified by what each case holds, saved with the run
so a resumed run reuses it.

A random split of a small dataset can hold out every case of a rare kind: on 16 hard phantoms with
one tumour without an enhancing part, a random 3-case validation split took that one case, the
model never saw such a tumour and missed a held-out one whole. So cases are grouped by which
labels they hold (`case_strata`), each group is held out in proportion, and a group's last case
stays in training. With one group (every case holds every label) the split is the plain seeded
shuffle it always was. The k-fold splits (`training/folds.py`) deal each group across the folds
the same way.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from kerasbrain.data.labels import LABEL_CHANNEL_LABELS


def case_strata(case_labels: dict[str, set[int] | frozenset[int]]) -> dict[str, str]:
    """Each case's stratum, named by the internal labels it holds in BraTS's abbreviations
    (e.g. "NCR+ED+ET", "NCR+ED" for a tumour without enhancement, "none")."""
    short = {label: name for name, (label,) in LABEL_CHANNEL_LABELS.items()}
    return {cid: "+".join(short.get(v, str(v)) for v in sorted(labels)) or "none"
            for cid, labels in case_labels.items()}


def describe_strata(strata: dict[str, str], split: dict[str, list[str]]) -> str:
    """One line for the run's log: each kind of case, how many, and how many are held out."""
    held = set(split["validation"])
    counts = Counter(strata.values())
    kinds = ", ".join(f"{kind} {n} ({sum(strata[c] == kind for c in held)} held out)"
                      for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"validation split by the labels each case holds: {kinds}"


def stratum_groups(case_ids: list[str], strata: dict[str, str] | None) -> list[list[str]]:
    """Sorted case ids per stratum, largest stratum first (ties by name), so the split does not
    depend on the order ids come in."""
    ids = sorted(case_ids)
    if not strata:
        return [ids]
    groups: dict[str, list[str]] = {}
    for cid in ids:
        groups.setdefault(strata.get(cid, "none"), []).append(cid)
    return [groups[k] for k in sorted(groups, key=lambda k: (-len(groups[k]), k))]


def validation_quotas(sizes: list[int], n_val: int) -> list[int]:
    """How many of each group to hold out: its share of `n_val` (largest remainders first), never a
    group's last case while another group can give one instead."""
    total = sum(sizes)
    exact = [n_val * s / total for s in sizes]
    quotas = [min(math.floor(e), s - 1) for e, s in zip(exact, sizes)]
    by_remainder = sorted(range(len(sizes)), key=lambda g: (-(exact[g] - math.floor(exact[g])), -sizes[g], g))
    by_size = sorted(range(len(sizes)), key=lambda g: (-sizes[g], g))
    for cap_slack in (1, 0):  # first keep one case of each group in training; only if that cannot fill, not
        order, grown = by_remainder, True
        while grown and sum(quotas) < n_val:  # the remainders first, then round after round by size
            grown = False
            for g in order:
                if sum(quotas) < n_val and quotas[g] < sizes[g] - cap_slack:
                    quotas[g] += 1
                    grown = True
            order = by_size
    return quotas


def split_cases(case_ids: list[str], validation_fraction: float, seed: int,
                strata: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Hold out round(fraction * n) cases (at least 1 when n > 1), each stratum in proportion,
    drawn with `seed`."""
    ids = sorted(case_ids)
    if validation_fraction <= 0 or len(ids) < 2:
        return {"train": ids, "validation": []}
    n_val = min(max(int(round(validation_fraction * len(ids))), 1), len(ids) - 1)
    groups = stratum_groups(ids, strata)
    rng = np.random.default_rng(seed)
    val = []
    for group, quota in zip(groups, validation_quotas([len(g) for g in groups], n_val)):
        order = rng.permutation(len(group))
        val += [group[i] for i in order[:quota]]
    val = sorted(val)
    return {"train": [i for i in ids if i not in val], "validation": val}


def load_or_create_split(path: Path, case_ids: list[str], validation_fraction: float, seed: int,
                         strata: dict[str, str] | None = None):
    """Reuse `path` if it exists (and still matches the dataset), else create and save it."""
    if path.exists():
        split = json.loads(path.read_text())
        missing = set(split["train"] + split["validation"]) - set(case_ids)
        if missing:
            raise ValueError(f"{path}: split names cases not in the dataset: {sorted(missing)[:5]}")
        return split
    split = split_cases(case_ids, validation_fraction, seed, strata)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split, indent=2))
    return split
