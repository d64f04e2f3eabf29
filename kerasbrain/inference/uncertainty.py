"""Where not to trust a mask: per-voxel uncertainty from the mirror test-time members, per lesion.

Mirror test-time augmentation predicts every window under 8 flips (the members); with an ensemble,
every network under every flip. Their mean is the prediction; their spread says how much the answer
depends on the view and, for an ensemble, on the network (each network weighted as the ensemble
weighs it). Both are blended over the
windows in the same pass (`moments=True` in the sliding-window paths), so uncertainty costs what
mirror TTA costs, nothing more. Per region (WT, TC, ET, each a binary decision):

- entropy: the binary entropy of the mean probability, in bits (0 = certain, 1 = a coin toss);
  QU-BraTS's uncertainty scale is this times 100.
- variance: the members' variance of the probability (their mean of squares minus the squared mean,
  blended over windows), in [0, 0.25].

Each predicted lesion (a 26-connected component of a region's mask) gets a confidence: its mean
probability and mean entropy inside, its volume and where it is.
"""

from __future__ import annotations

import dataclasses

import numpy as np

REGIONS = ("WT", "TC", "ET")


@dataclasses.dataclass
class Uncertainty:
    """Per-region maps on the case's canonical grid, each (X, Y, Z, 3) float32 in WT, TC, ET order."""

    probabilities: np.ndarray
    entropy: np.ndarray  # bits, [0, 1]
    variance: np.ndarray  # [0, 0.25]
    members: int  # how many predictions each voxel's spread is over (8 mirror views x networks)
    networks: int = 1  # networks of an ensemble

    @classmethod
    def from_moments(cls, moments: np.ndarray, members: int, networks: int = 1) -> "Uncertainty":
        """From the blended (X, Y, Z, 2C) members' mean and mean of squares."""
        channels = moments.shape[-1] // 2
        mean = np.clip(moments[..., :channels], 0.0, 1.0).astype(np.float32)
        variance = np.clip(moments[..., channels:] - mean * mean, 0.0, 0.25).astype(np.float32)
        return cls(mean, binary_entropy(mean), variance, members, networks)

    def describe_members(self) -> str:
        """What the spread is over, in words: "8 mirror views" or "8 mirror views x 5 networks"."""
        views = self.members // self.networks
        return f"{views} mirror views" + (f" x {self.networks} networks" if self.networks > 1 else "")

    def lesion_maps(self) -> dict:
        """The maps a lesion's confidence averages, under the names the case report gives them."""
        return {"mean_probability": self.probabilities, "mean_entropy_bits": self.entropy,
                "mean_variance": self.variance}

    def qubrats_scale(self) -> np.ndarray:
        """Entropy as QU-BraTS reads uncertainty: whole numbers from 0 (certain) to 100 (most uncertain),
        per region, as the challenge's 0-100 maps are. Rounding matters at the last threshold (0): a
        float entropy is almost never exactly 0, so unrounded every voxel would be filtered there."""
        return np.rint(self.entropy * 100.0).astype(np.float32)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) = -p log2 p - (1 - p) log2 (1 - p), in bits; 0 at p in {0, 1}, 1 at p = 0.5."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where(h < 1e-9, 0.0, h).astype(np.float32)


def lesion_confidence(labels_regions: np.ndarray, uncertainty: Uncertainty, spacing, affine=None) -> list[dict]:
    """One row per predicted lesion of each region: volume, centre, mean probability, entropy and variance inside.

    `labels_regions` is the (X, Y, Z, 3) boolean WT / TC / ET mask of the final label map (after
    post-processing), so the lesions are the ones the user sees; they are the case report's lesions
    (`metrics.measurements.case_measurements`), with the confidence added.
    """
    from kerasbrain.metrics.measurements import case_measurements

    return case_measurements(labels_regions, spacing, affine, per_lesion_means=uncertainty.lesion_maps())["lesions"]


def uncertainty_summary(uncertainty: Uncertainty, labels_regions: np.ndarray) -> dict:
    """Per region: mean entropy inside the predicted region and over its uncertain band (entropy > 0.5)."""
    out = {}
    for r, region in enumerate(REGIONS):
        inside = labels_regions[..., r]
        entropy = uncertainty.entropy[..., r]
        out[region] = {"mean_entropy_inside": round(float(entropy[inside].mean()), 4) if inside.any() else 0.0,
                       "uncertain_voxels": int((entropy > 0.5).sum())}
    return out
