"""Label conventions of the public brain-tumour layouts and the one kerasbrain uses inside.

Every reader maps its dataset's labels to the internal convention below on load, and the three
BraTS evaluation regions are derived from it by one function, so MSD and BraTS cases are scored
identically.

Internal convention (BraTS 2023 numbering):
    0 background, 1 necrotic / non-enhancing tumour core (NCR/NET), 2 peritumoural edema (ED),
    3 enhancing tumour (ET).
Regions (BraTS): whole tumour WT = {1, 2, 3}, tumour core TC = {1, 3}, enhancing tumour ET = {3}.
"""

from __future__ import annotations

import numpy as np

BACKGROUND, NECROTIC_CORE, EDEMA, ENHANCING = 0, 1, 2, 3
LABEL_NAMES = {0: "background", 1: "necrotic_core", 2: "edema", 3: "enhancing"}

#: Dataset label -> internal label, for each supported layout.
LABEL_MAPS: dict[str, dict[int, int]] = {
    # Medical Segmentation Decathlon Task01: 1 edema, 2 non-enhancing tumour, 3 enhancing tumour.
    "msd": {0: 0, 1: EDEMA, 2: NECROTIC_CORE, 3: ENHANCING},
    # BraTS 2021: 1 NCR/NET, 2 ED, 4 ET (there is no label 3).
    "brats2021": {0: 0, 1: NECROTIC_CORE, 2: EDEMA, 4: ENHANCING},
    # BraTS 2023: 1 NCR, 2 ED, 3 ET.
    "brats2023": {0: 0, 1: NECROTIC_CORE, 2: EDEMA, 3: ENHANCING},
}

#: Order of the network's output channels and of every per-region table.
REGIONS = ("WT", "TC", "ET")
REGION_LABELS = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
#: Seed 003 reports sensitivity/specificity per label rather than per region.
LABEL_CLASSES = ("edema", "necrotic_core", "enhancing")
#: Seed 003's own targets (`[model] targets = "labels"`): one sigmoid channel per label, in its order
#: (MSD's 1 edema, 2 non-enhancing tumour, 3 enhancing). Exclusive, unlike the nested regions.
LABEL_CHANNELS = ("ED", "NCR", "ET")
LABEL_CHANNEL_LABELS = {"ED": (2,), "NCR": (1,), "ET": (3,)}
#: Each region as the label channels it is made of (how a label-channel network answers in regions).
REGION_FROM_CHANNELS = {"WT": (0, 1, 2), "TC": (1, 2), "ET": (2,)}


class LabelError(ValueError):
    """A label map holds values its layout does not define."""


def to_internal(labels: np.ndarray, layout: str, source: str = "<array>") -> np.ndarray:
    """Map a dataset label array to the internal convention; unknown values raise naming `source`."""
    if layout not in LABEL_MAPS:
        raise ValueError(f"Unknown label layout, expected one of {sorted(LABEL_MAPS)}. Received: layout={layout!r}")
    mapping = LABEL_MAPS[layout]
    values = np.unique(labels)
    unknown = [v for v in values.tolist() if v not in mapping]
    if unknown:
        raise LabelError(
            f"{source}: label values {unknown} are not part of the {layout} convention "
            f"(allowed: {sorted(mapping)})"
        )
    lut = np.zeros(max(mapping) + 1, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut[labels.astype(np.int64)]


def from_internal(labels: np.ndarray, layout: str) -> np.ndarray:
    """Map internal labels back to a dataset's convention (used when writing predictions)."""
    inverse = {dst: src for src, dst in LABEL_MAPS[layout].items()}
    lut = np.zeros(4, dtype=np.uint8)
    for dst, src in inverse.items():
        lut[dst] = src
    return lut[labels.astype(np.int64)]


def labels_to_regions(labels: np.ndarray) -> np.ndarray:
    """Internal label map (...,) -> binary region masks (..., 3) in `REGIONS` order."""
    return np.stack([np.isin(labels, REGION_LABELS[r]) for r in REGIONS], axis=-1).astype(np.uint8)


def labels_to_channels(labels: np.ndarray) -> np.ndarray:
    """Internal label map (...,) -> one binary mask per label (..., 3) in `LABEL_CHANNELS` order."""
    return np.stack([np.isin(labels, LABEL_CHANNEL_LABELS[c]) for c in LABEL_CHANNELS], axis=-1).astype(np.uint8)


def training_targets(kind: str):
    """(channel names, labels -> targets) of a 3-D network's outputs: "regions" or seed 003's "labels"."""
    if kind == "regions":
        return REGIONS, labels_to_regions
    if kind == "labels":
        return LABEL_CHANNELS, labels_to_channels
    raise ValueError(f"targets must be 'regions' or 'labels'. Received: {kind!r}")


def regions_to_labels(regions: np.ndarray) -> np.ndarray:
    """Binary region masks (..., 3) -> internal labels, nested as BraTS defines them.

    ET wins over TC, TC over WT: a voxel is enhancing if ET is on, else necrotic core if TC is on,
    else edema if WT is on. This is the inverse of `labels_to_regions` on consistent masks.
    """
    wt, tc, et = (regions[..., i].astype(bool) for i in range(3))
    labels = np.zeros(regions.shape[:-1], dtype=np.uint8)
    labels[wt] = EDEMA
    labels[tc] = NECROTIC_CORE
    labels[et] = ENHANCING
    return labels


def region_volumes_ml(labels: np.ndarray, spacing) -> dict[str, float]:
    """Volume of each BraTS region of an internal label map, in mL, from the voxel size in mm."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {r: float(np.isin(labels, REGION_LABELS[r]).sum()) * voxel_ml for r in REGIONS}
