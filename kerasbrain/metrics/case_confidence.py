"""How far to trust a whole case: each region's Dice estimated from the model's own probabilities.

The per-voxel maps (`inference/uncertainty.py`) say where a mask is doubtful; a reader of many cases
also needs to know which cases to look at first. Two estimates per region, neither needing the truth:

- expected Dice: the Dice the predicted mask M would score against a truth drawn voxel by voxel
  from the mean probabilities p (a ratio of expectations: E|M & T| = sum of p over M, E|T| = sum
  of p), 2 sum_M p / (|M| + sum p). It needs only the probabilities every prediction has. Where M
  is empty the Dice is 1 if the truth is empty too (BraTS), so the estimate is the chance of that,
  read as 1 - max p (the likeliest voxel decides whether there is anything).
- member agreement (with `--uncertainty`): the mean soft Dice between two different members (mirror
  views, times networks), 2 E[p_a p_b] / (E p_a + E p_b) over voxels, from the blended mean m and
  variance v alone: E[p_a p_b] = m^2 - v / (n - 1) for n members. Members that disagree lower it.
  Zenk et al. (Medical Image Analysis 2025, "Comparative benchmarking of failure detection methods
  in medical image segmentation") found the pairwise Dice between ensemble members' masks the best
  of the case-level failure detectors they compared, a simple, robust baseline; this is its soft
  form, computable from the blended moments. Where the final mask is empty it takes the expected Dice's rule (soft Dice between faint
  hazes is ~0 though, as masks, the members agree on "nothing").

Both are blind to confident mistakes (a false tumour predicted at p = 0.95 looks certain), and both
assume voxels independent, so they rank cases rather than predict their Dice to the hundredth;
`evaluation/failure_detection.py` measures how well they rank.
"""

from __future__ import annotations

import numpy as np

from kerasbrain.data.labels import REGIONS


def expected_dice(probability: np.ndarray, mask: np.ndarray) -> float:
    """2 sum_M p / (|M| + sum p); for an empty mask, 1 - max p (the chance the truth is empty too)."""
    p = np.asarray(probability, np.float64)
    mask = np.asarray(mask, bool)
    if not mask.any():
        return float(1.0 - p.max()) if p.size else 1.0
    return float(2.0 * p[mask].sum() / (mask.sum() + p.sum()))


def expected_dice_ops(probabilities, regions):
    """keras.ops twin of `expected_dice` for a batch, what a served case answers with: (n, *spatial, R)
    probabilities and boolean masks -> (n, R). Summed one axis at a time, so float32 over a whole
    case's millions of voxels stays within float rounding of the float64 sum."""
    from keras import ops

    p = ops.cast(probabilities, "float32")
    m = ops.cast(regions, "float32")
    spatial = tuple(range(1, len(p.shape) - 1))

    def total(x):
        for axis in reversed(spatial):
            x = ops.sum(x, axis=axis)
        return x

    inside, size, mass = total(p * m), total(m), total(p)
    return ops.where(size > 0, 2.0 * inside / ops.maximum(size + mass, 1e-12), 1.0 - ops.max(p, axis=spatial))


def member_agreement(mean: np.ndarray, variance: np.ndarray, members: int, mask: np.ndarray | None = None) -> float:
    """Mean soft Dice between two different members: sum (m^2 - v / (n - 1)) / sum m.

    Where the final `mask` is empty, as `expected_dice`: 1 - max m. (Soft Dice between members that
    each predict a faint haze is near 0, though as masks they agree on "nothing".)"""
    if members < 2:
        raise ValueError(f"member agreement needs at least 2 members. Received: members={members}")
    m = np.asarray(mean, np.float64)
    v = np.asarray(variance, np.float64)
    total = m.sum()
    if (mask is not None and not np.asarray(mask, bool).any()) or total <= 0:
        return float(1.0 - m.max()) if m.size else 1.0
    return float(np.clip((m * m - v / (members - 1)).sum() / total, 0.0, 1.0))


def case_confidence(probabilities: np.ndarray, regions: np.ndarray, uncertainty=None) -> dict[str, float]:
    """`expected_dice_{WT,TC,ET}` of the final (X, Y, Z, 3) boolean region masks under the (X, Y, Z, 3)
    region probabilities; with an `inference.uncertainty.Uncertainty`, `agreement_{region}` too."""
    out = {f"expected_dice_{r}": round(expected_dice(probabilities[..., i], regions[..., i]), 4)
           for i, r in enumerate(REGIONS)}
    if uncertainty is not None:
        out.update({f"agreement_{r}": round(member_agreement(uncertainty.probabilities[..., i],
                                                             uncertainty.variance[..., i], uncertainty.members,
                                                             regions[..., i]), 4)
                    for i, r in enumerate(REGIONS)})
    return out
