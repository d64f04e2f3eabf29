"""Which slices to read beside the least confident ones: nothing predicted, a tumour predicted next door.

A slice model's confidence (`metrics/case_confidence.expected_dice`) cannot see a tumour it missed
entirely: an empty mask over an almost-black probability map looks certain. The misses are not
anywhere, though: a tumour spans neighbouring slices, and what a slice model misses is mostly its
small top and bottom ends, next to slices where it found the tumour (on held-out hard LGG phantoms,
39 of 46 missed tumour slices in two runs, 18 of 38 in a third, weaker one; README "Which slices and
patients to read first, measured"; a tumour missed on every slice has no such neighbour). So a
slice with nothing predicted whose neighbour (slice index +-1, same patient) has a predicted tumour
is named for review. Slices are named as kaggle_3m names them, `<patient>_<index>`.
"""

from __future__ import annotations

import re

_SLICE_NAME = re.compile(r"^(?P<patient>.+)_(?P<index>\d+)$")


def slice_key(name: str) -> tuple[str, int] | None:
    """(patient, index) of a slice named `<patient>_<index>` (a file stem), else None."""
    match = _SLICE_NAME.match(name)
    return (match["patient"], int(match["index"])) if match else None


def next_to_predicted_tumour(slices: dict) -> set:
    """The keys of `slices` ({(patient, index): whether a tumour was predicted}) with nothing predicted
    while a neighbouring slice of the same patient has a predicted tumour."""
    return {(patient, index) for (patient, index), predicted in slices.items() if not predicted
            and (slices.get((patient, index - 1)) or slices.get((patient, index + 1)))}


def missed_end_candidates(rows: list[dict]) -> list[str]:
    """From a folder's `predictions.csv` rows (`case` a slice's name, `tumour_pixels` its predicted
    tumour), the cases with nothing predicted next to a predicted tumour, in name order; [] where the
    rows have no slice names or no pixel counts."""
    slices, names = {}, {}
    for row in rows:
        key = slice_key(row["case"])
        if key is not None and row.get("tumour_pixels") not in (None, ""):
            slices[key], names[key] = int(row["tumour_pixels"]) > 0, row["case"]
    return sorted(names[key] for key in next_to_predicted_tumour(slices))
