"""BraTS 2023+ lesion-wise Dice and HD95: every missed lesion and every false-positive island counts.

The rule, per region (WT, TC, ET), as the BraTS 2023 challenges score it:

1. Ground-truth and predicted components are 26-connected.
2. Ground-truth components that fall in one component of the dilated ground truth (dilation by
   `dilation` iterations of the 18-neighbourhood) are one lesion.
3. Each lesion is matched with every predicted component that touches its own dilation; its Dice
   and HD95 are those of the lesion against the union of its matched components. A lesion with
   no match scores Dice 0 and HD95 374 mm.
4. Each predicted component that touches no lesion's dilation is a false positive: it adds a term
   of Dice 0 and HD95 374 mm.
5. Lesions whose volume is at or below `min_volume` (mm^3; voxels at BraTS's 1 mm) are left out of
   the score (their matched components are not false positives either).
6. The case's lesion-wise Dice (HD95) is the sum over scored lesions plus the false-positive terms,
   divided by their number; with neither lesions nor false positives, Dice 1 and HD95 0.

HD95 per lesion is kerasbrain's (`numpy_metrics.hd95`, the larger directed 95th percentile of
surface distances); the challenge's code weights surface elements by area, so single lesions may
differ from it in the decimals, never in which lesions count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from kerasbrain.data.labels import REGIONS, labels_to_regions
from kerasbrain.metrics.numpy_metrics import dice, hd95

#: The HD95 of a missed lesion or a false positive, in mm (BraTS 2023).
MISSED_HD95 = 374.0
#: The challenges' settings: (dilation iterations, lesion volume threshold in mm^3).
PRESETS = {"GLI": (3, 50.0), "MET": (1, 2.0), "PED": (3, 50.0), "MEN": (1, 50.0), "SSA": (3, 50.0)}
_CONNECTED = ndimage.generate_binary_structure(3, 3)  # 26 neighbours
_DILATE = ndimage.generate_binary_structure(3, 2)  # 18 neighbours, as the challenge dilates


@dataclass(frozen=True)
class LesionSettings:
    """How lesions are merged and which are scored; `preset` names the challenge (or "custom")."""

    dilation: int = 3
    min_volume: float = 50.0  # mm^3; lesions at or below it are left out
    preset: str = "GLI"

    @classmethod
    def of(cls, preset: str = "GLI", dilation: int | None = None, min_volume: float | None = None):
        """A preset's settings, with either value overridden (the preset is then called custom)."""
        if preset not in PRESETS:
            raise ValueError(f"lesion preset must be one of {', '.join(PRESETS)}. Received: {preset!r}")
        d, v = PRESETS[preset]
        changed = (dilation is not None and dilation != d) or (min_volume is not None and min_volume != v)
        return cls(d if dilation is None else int(dilation), v if min_volume is None else float(min_volume),
                   f"{preset} (custom)" if changed else preset)


@dataclass
class LesionScore:
    dice: float
    hd95: float
    tp: int  # scored lesions with a match
    fn: int  # scored lesions without one
    fp: int  # predicted components that touch no lesion
    rows: list  # one dict per lesion and per false positive


def _crop(*masks, margin: int):
    """The slices of the masks' common bounding box grown by `margin` (None when all are empty)."""
    union = np.zeros(masks[0].shape, bool)
    for m in masks:
        union |= m
    if not union.any():
        return None
    return tuple(slice(max(int(i.min()) - margin, 0), int(i.max()) + margin + 1) for i in np.nonzero(union))


def lesion_wise(pred, truth, spacing=(1.0, 1.0, 1.0), settings: LesionSettings = LesionSettings(),
                probability=None) -> LesionScore:
    """Lesion-wise Dice and HD95 of one binary region (see the module docstring for the rule).

    With the region's `probability` map, each row says how confident the prediction was: the mean
    probability over the predicted components it scores (a lesion's matched ones, a false
    positive's own; NaN for a missed lesion)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    voxel_mm3 = float(np.prod(spacing))
    box = _crop(pred, truth, margin=settings.dilation + 1)
    if box is None:
        return LesionScore(1.0, 0.0, 0, 0, 0, [])
    pred, truth = pred[box], truth[box]  # components cannot reach outside the masks' bounding box
    probability = None if probability is None else np.asarray(probability, np.float32)[box]

    def confidence(where) -> dict:
        """The row's mean probability over `where`, when there is a probability map."""
        if probability is None:
            return {}
        return {"mean_probability": float(probability[where].mean()) if where.any() else float("nan")}
    pred_cc, n_pred = ndimage.label(pred, _CONNECTED)
    merged = np.zeros(truth.shape, np.int32)
    if truth.any():
        grown = ndimage.binary_dilation(truth, _DILATE, iterations=settings.dilation) if settings.dilation else truth
        grown_cc, _ = ndimage.label(grown, _CONNECTED)
        merged[truth] = grown_cc[truth]  # truth components in one dilated component are one lesion
    rows, matched_components, scored = [], set(), []
    for lesion_id in [int(i) for i in np.unique(merged) if i]:
        lesion = merged == lesion_id
        reach = ndimage.binary_dilation(lesion, _DILATE, iterations=settings.dilation) if settings.dilation else lesion
        matched = [int(c) for c in np.unique(pred_cc[reach]) if c]
        matched_components.update(matched)
        found = np.isin(pred_cc, matched) if matched else np.zeros_like(lesion)
        volume = float(lesion.sum()) * voxel_mm3
        row = {"lesion": lesion_id, "volume_mm3": volume, "predicted_components": len(matched),
               "dice": dice(found, lesion) if matched else 0.0,
               "hd95": hd95(found, lesion, spacing) if matched else MISSED_HD95, **confidence(found)}
        if volume <= settings.min_volume:
            row["status"] = "below threshold"
        else:
            row["status"] = "matched" if matched else "missed"
            scored.append(row)
        rows.append(row)
    false_positives = [c for c in range(1, n_pred + 1) if c not in matched_components]
    for c in false_positives:
        rows.append({"lesion": f"fp{c}", "volume_mm3": float((pred_cc == c).sum()) * voxel_mm3,
                     "predicted_components": 1, "dice": 0.0, "hd95": MISSED_HD95, "status": "false positive",
                     **confidence(pred_cc == c)})
    terms = len(scored) + len(false_positives)
    if terms == 0:
        return LesionScore(1.0, 0.0, 0, 0, 0, rows)
    return LesionScore(sum(r["dice"] for r in scored) / terms,
                       (sum(r["hd95"] for r in scored) + MISSED_HD95 * len(false_positives)) / terms,
                       sum(r["status"] == "matched" for r in scored), sum(r["status"] == "missed" for r in scored),
                       len(false_positives), rows)


def lesion_wise_region_scores(pred_labels, truth_labels, spacing=(1.0, 1.0, 1.0),
                              settings: LesionSettings = LesionSettings(),
                              probabilities=None) -> tuple[dict[str, float], list[dict]]:
    """Per region: `lesion_dice_R`, `lesion_hd95_R`, `lesions_tp_R`, `lesions_fn_R`, `lesions_fp_R`; and the
    rows (with the (X, Y, Z, 3) region `probabilities`, each row's mean probability)."""
    pred, truth = labels_to_regions(pred_labels).astype(bool), labels_to_regions(truth_labels).astype(bool)
    scores, rows = {}, []
    for r, region in enumerate(REGIONS):
        s = lesion_wise(pred[..., r], truth[..., r], spacing, settings,
                        None if probabilities is None else probabilities[..., r])
        scores.update({f"lesion_dice_{region}": s.dice, f"lesion_hd95_{region}": s.hd95,
                       f"lesions_tp_{region}": s.tp, f"lesions_fn_{region}": s.fn, f"lesions_fp_{region}": s.fp})
        rows += [{"region": region, **row} for row in s.rows]
    return scores, rows
