"""BraTS post-processing of a predicted label map (what the BraTS winners and nnU-Net do).

First a fixed rule against specks, on by default:

- `[inference] min_part_ml` (0.01 mL = 10 mm^3): every connected part (26 neighbours) of the
  enhancing tumour, the tumour core or the whole tumour smaller than this is given to the region
  around it: an enhancing speck becomes necrotic core, a core speck edema, a whole-tumour speck
  background (except the whole tumour's largest part). BraTS 2023 scores every predicted part that
  touches no true lesion as a false-positive lesion at Dice 0, and a case without enhancing tumour
  scores ET 0 for a single voxel of it; a part of a few voxels is below any lesion BraTS scores
  (GLI counts true lesions above 50 mm^3), so removing it costs at most its few voxels.

Then two rules, each off at 0 and both chosen on validation cases, never on the cases reported:

- `[inference] min_component_ml`: tumour islands (connected regions of the whole tumour, 26
  neighbours) smaller than this volume are removed, except the largest one, so a case always keeps
  its main lesion. Stray islands cost Dice and dominate HD95 (nnU-Net's connected-component step).
- `[inference] min_enhancing_ml`: a case whose predicted enhancing tumour is smaller than this
  volume is most often a case without enhancing tumour (a low-grade glioma), and BraTS scores an
  empty truth with a non-empty prediction as Dice 0 and the maximal HD95; relabelling that small
  enhancing region as necrotic / non-enhancing core keeps it in the tumour core and whole tumour.

`kerasbrain train unet3d` chooses both when it ends, on cases it holds out and some it trained on
(`evaluation/postprocess_choice.py`); `kerasbrain evaluate` scores every pair of candidate
thresholds on its cases and reports the pair with the best mean WT/TC/ET score
(`choose_postprocessing`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE, REGION_LABELS, REGIONS
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.metrics.numpy_metrics import dice

#: Candidate thresholds tried by `evaluate` (mL). At 1 mm, 0.2 mL is 200 voxels (nnU-Net's BraTS
#: enhancing threshold's order); at 2 mm, 0.1 mL is 12.5 voxels. 0.05 mL is the smallest true lesion
#: BraTS GLI, PED, MEN and SSA score (50 mm^3; `island_floor_ml`).
COMPONENT_CANDIDATES_ML = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
ENHANCING_CANDIDATES_ML = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
#: `[inference] min_part_ml`'s default: 10 mm^3, a fifth of the smallest true lesion BraTS GLI scores.
MIN_PART_ML = InferenceConfig.min_part_ml
#: The inner regions, innermost first, each with the label its specks are given (`remove_specks`).
SPECK_FALLBACK = (("ET", NECROTIC_CORE), ("TC", EDEMA))


def voxel_ml(spacing) -> float:
    return float(np.prod(spacing)) / 1000.0


def _components(mask: np.ndarray):
    """Connected parts of `mask` (26 neighbours) and each part's voxel count (index 0: none)."""
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    return components, count, np.bincount(components.ravel(), minlength=count + 1)


def remove_specks(labels: np.ndarray, spacing, min_ml: float) -> np.ndarray:
    """`labels` with every part of ET and TC below `min_ml` mL given to the region around it, innermost
    first (`SPECK_FALLBACK`), then whole-tumour islands below it removed (`remove_small_components`:
    the largest part always stays)."""
    if min_ml <= 0 or not labels.any():
        return labels
    box = tuple(slice(max(int(w.min()) - 1, 0), int(w.max()) + 2) for w in np.nonzero(labels))  # tumour + 1
    inner = labels[box].copy()
    for region, fallback in SPECK_FALLBACK:
        components, count, sizes = _components(np.isin(inner, REGION_LABELS[region]))
        small = np.flatnonzero(sizes[1:] * voxel_ml(spacing) < min_ml) + 1
        if small.size:
            inner[np.isin(components, small)] = fallback
    out = labels.copy()
    out[box] = remove_small_components(inner, spacing, min_ml)
    return out


def remove_small_components(labels: np.ndarray, spacing, min_ml: float) -> np.ndarray:
    """`labels` without tumour islands below `min_ml` mL; the largest tumour component always stays."""
    if min_ml <= 0:
        return labels
    components, count, sizes = _components(labels > 0)
    if count < 2:
        return labels
    sizes_ml = sizes[1:] * voxel_ml(spacing)
    small = np.flatnonzero(sizes_ml < min_ml) + 1
    small = small[small != np.argmax(sizes_ml) + 1]
    if not small.size:
        return labels
    return np.where(np.isin(components, small), 0, labels).astype(labels.dtype)


def relabel_small_enhancing(labels: np.ndarray, spacing, min_ml: float) -> np.ndarray:
    """`labels` with enhancing tumour relabelled as necrotic core when its volume is below `min_ml` mL."""
    if min_ml <= 0:
        return labels
    enhancing = labels == ENHANCING
    volume_ml = float(enhancing.sum()) * voxel_ml(spacing)
    if 0 < volume_ml < min_ml:
        labels = np.where(enhancing, NECROTIC_CORE, labels).astype(labels.dtype)
    return labels


def postprocess(labels: np.ndarray, spacing, min_component_ml: float = 0.0, min_enhancing_ml: float = 0.0,
                min_part_ml: float = 0.0):
    """Every rule in order: specks, islands (they may hold enhancing voxels), small enhancing tumour."""
    labels = remove_specks(labels, spacing, min_part_ml)
    return relabel_small_enhancing(remove_small_components(labels, spacing, min_component_ml), spacing,
                                   min_enhancing_ml)


def postprocess_with(labels: np.ndarray, spacing, cfg) -> np.ndarray:
    """`postprocess` with an `InferenceConfig`'s three thresholds."""
    return postprocess(labels, spacing, cfg.min_component_ml, cfg.min_enhancing_ml, cfg.min_part_ml)


def region_dice(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, ...]:
    """BraTS Dice per region (WT, TC, ET): 1 when both are empty, 0 when only one is."""
    return tuple(dice(np.isin(predicted, REGION_LABELS[r]), np.isin(truth, REGION_LABELS[r])) for r in REGIONS)


def postprocessing_scores(labels, truth, spacing, components=COMPONENT_CANDIDATES_ML,
                          enhancing=ENHANCING_CANDIDATES_ML, score=None) -> dict[tuple[float, float], tuple[float, ...]]:
    """One case's WT/TC/ET scores for each (min_component_ml, min_enhancing_ml) pair (`labels` raw).

    `score(labels, truth)` gives the three scores; the default is the whole-region ("legacy") Dice;
    evaluation passes the lesion-wise Dice when post-processing is chosen for it.
    """
    import hashlib

    score = score or region_dice
    scores, scored = {}, {}
    for c in components:
        kept = remove_small_components(labels, spacing, c)
        for e in enhancing:
            result = relabel_small_enhancing(kept, spacing, e)
            # most pairs leave the same label map (a case has few islands): each distinct map is scored once
            key = hashlib.sha1(np.ascontiguousarray(result).tobytes()).digest()
            if key not in scored:
                scored[key] = score(result, truth)
            scores[c, e] = scored[key]
    return scores


def island_floor_ml(target: str, lesion=None) -> float:
    """The island threshold a tie goes to: for the lesion-wise Dice, the largest candidate at or below
    the smallest true lesion it scores (`lesion.min_volume`, mm^3: 0.05 mL for GLI), else 0.

    Why: the lesion-wise Dice scores each predicted island that touches no true lesion as a lesion
    of Dice 0, while a true lesion that small is not scored at all; so removing islands below it can
    cost a scored lesion at most the few voxels of a detached fragment, and keeping a false one
    costs a whole lesion. When the cases a choice is made on show no such island every threshold
    ties, and "off" would leave the islands of new cases in place.
    """
    if target != "lesion" or lesion is None:
        return 0.0
    return max(c for c in COMPONENT_CANDIDATES_ML if c <= lesion.min_volume / 1000.0)


def choose_postprocessing(per_case: list[dict], floor_ml: float = 0.0
                          ) -> tuple[tuple[float, float], dict[tuple[float, float], float]]:
    """The pair with the best mean WT/TC/ET Dice over cases (`postprocessing_scores`' dicts).

    Returns ((min_component_ml, min_enhancing_ml), {pair: mean Dice}). Ties go to the island
    threshold `floor_ml` where it is among the best (`island_floor_ml`), else to the smaller
    thresholds, islands first; with the default 0, "off" wins unless a rule helps.
    """
    means = {pair: float(np.mean([case[pair] for case in per_case])) for pair in per_case[0]}
    best = max(means.values())
    tied = [pair for pair, score in means.items() if score >= best - 1e-12]
    return min([pair for pair in tied if pair[0] == floor_ml] or tied), means
