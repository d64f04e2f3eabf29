"""A second, independently built phantom generator: folded cortex, real confounders, MRI scaling.

`phantom.make_phantom` draws nested ellipsoids; a recipe tuned on it alone can learn its quirks.
This generator is written apart from it (its own shapes, noise, contrasts and scanner model) so
that every figure can be checked on data the recipe was not tuned on (`synth msd --generator
anatomy`). What differs, each after something real scans have:

- anatomy: scalp fat bright on T1, dark bone, a cortex folded into gyri with CSF in the sulci,
  white matter, deep grey nuclei, ventricles;
- confounders that enhance on T1Gd without being tumour: choroid plexus in the ventricles and the
  superior sagittal sinus under the skull;
- tumours: irregular cores from randomly perturbed distance fields, enhancing rims with gaps,
  non-enhancing cores whose signal is close to edema's, solid enhancing satellite nodules, and
  edema that follows the white matter and spares most of the cortex;
- the scanner: contrasts jittered per case, a polynomial bias field per sequence, each sequence
  in its own arbitrary units, Gaussian noise in the complex signal (Rician magnitude) and, for
  "hard", the noise floor left in the background (a head that is not skull-stripped).

Same contract as `make_phantom`: (image (X, Y, Z, 4) float32 FLAIR/T1/T1Gd/T2, internal labels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE

_FAT, _BONE, _CSF, _GM, _WM, _DEEP, _PLEXUS, _SINUS, _NET = range(10, 19)
#: Mean signal per tissue (FLAIR, T1, T1Gd, T2) before the per-case jitter.
_SIGNAL = {
    _FAT: (0.9, 1.3, 1.3, 0.8), _BONE: (0.08, 0.08, 0.08, 0.08), _CSF: (0.12, 0.25, 0.25, 1.5),
    _GM: (0.8, 0.6, 0.62, 0.85), _WM: (0.65, 0.85, 0.86, 0.6), _DEEP: (0.75, 0.7, 0.7, 0.75),
    _PLEXUS: (0.5, 0.6, 1.5, 0.8), _SINUS: (0.2, 0.3, 1.4, 0.3),
    EDEMA: (1.2, 0.5, 0.52, 1.25), NECROTIC_CORE: (0.7, 0.35, 0.4, 1.35), ENHANCING: (0.95, 0.6, 1.45, 0.95),
    _NET: (1.1, 0.55, 0.6, 1.15),  # a non-enhancing tumour core: labelled necrotic core, looks like edema
}
#: Which label wins where lesions overlap, indexed by label: enhancing over core over edema.
_RANK = np.zeros(4, np.uint8)
_RANK[[EDEMA, NECROTIC_CORE, ENHANCING]] = 1, 2, 3


def _waves(rng, points, count: int, frequency: float) -> np.ndarray:
    """A smooth random field of unit spread: the sum of `count` plane waves (radians per voxel)."""
    field = np.zeros(points.shape[:-1], np.float32)
    for _ in range(count):
        k = rng.normal(0.0, frequency, 3).astype(np.float32)
        field += np.cos(points @ k + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return field / np.sqrt(count / 2.0)


def _lesion(rng, points, brain, white, centre, radius, kind, edema_reach):
    """Internal labels of one lesion: its core, rim and edema from a perturbed distance field."""
    rho = np.linalg.norm((points - centre) / (radius * rng.uniform(0.8, 1.25, 3)), axis=-1)
    rho = rho + 0.3 * _waves(rng, points, 6, 1.2 / radius)
    core = (rho < 1.0) & brain
    labels = np.zeros(brain.shape, np.uint8)
    reach = 1.0 + edema_reach * (1.0 + 0.4 * _waves(rng, points, 6, 0.6 / radius))
    labels[(rho < reach) & brain & (white | (rho < 1.0 + edema_reach / 3))] = EDEMA
    if kind == "rim":
        rim = core & (rho > rng.uniform(0.55, 0.8)) & (_waves(rng, points, 4, 1.0 / radius) > -0.6)
        labels[core] = NECROTIC_CORE
        labels[rim] = ENHANCING
    else:
        labels[core] = ENHANCING if kind == "solid" else NECROTIC_CORE
    parts, _ = ndimage.label(labels > 0, np.ones((3, 3, 3)))
    touching = np.unique(parts[core & (parts > 0)])
    labels[~np.isin(parts, touching)] = 0  # edema is contiguous with its tumour
    return labels


def make_anatomical_phantom(shape=(96, 96, 64), seed: int = 0, tumour: bool = True, difficulty: str = "easy"):
    """Return (image (X, Y, Z, 4) float32, internal labels (X, Y, Z) uint8) in RAS+ voxel order."""
    if difficulty not in ("easy", "hard"):
        raise ValueError(f"difficulty must be easy or hard. Received: {difficulty!r}")
    hard = difficulty == "hard"
    rng = np.random.default_rng([seed, 2026])
    shape = tuple(int(s) for s in shape)
    points = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"), -1)
    centre = np.array(shape, np.float32) / 2 + rng.normal(0, 1.5, 3)
    radii = np.array(shape, np.float32) * np.array([0.36, 0.41, 0.40]) * rng.uniform(0.95, 1.05, 3)
    d = np.linalg.norm((points - centre) / radii, axis=-1) * (1 + 0.03 * _waves(rng, points, 5, 0.08))
    gyri = _waves(rng, points, 24, 0.45)

    tissue = np.zeros(shape, np.uint8)
    tissue[d <= 1.0] = _FAT
    tissue[d <= 0.94] = _BONE
    tissue[d <= 0.90] = _CSF
    tissue[d <= 0.87] = _GM
    tissue[(d > 0.72) & (d <= 0.87) & (gyri > 1.0)] = _CSF  # sulci
    tissue[d <= 0.64 + 0.08 * gyri] = _WM
    rel = (points - centre) / radii
    for side in (-1, 1):
        tissue[np.linalg.norm((rel - [side * 0.2, -0.05, -0.1]) / [0.12, 0.16, 0.12], axis=-1) < 1] = _DEEP
        ventricle = np.linalg.norm((rel - [side * 0.1, 0.05 * side, 0.08]) / [0.06, 0.32, 0.1], axis=-1) < 1
        tissue[ventricle] = _CSF
        tissue[ventricle & (np.linalg.norm((rel - [side * 0.1, -0.2, 0.08]) / [0.04, 0.06, 0.05], axis=-1) < 1)] = _PLEXUS
    sinus = np.hypot(rel[..., 0] / 0.03, (d - 0.885) / 0.025) < 1
    tissue[sinus & (rel[..., 2] > 0.2)] = _SINUS
    brain = np.isin(tissue, (_GM, _WM, _DEEP))
    white = np.isin(tissue, (_WM, _DEEP))

    labels = np.zeros(shape, np.uint8)
    net = np.zeros(shape, bool)
    if tumour:
        inner = np.argwhere(white & (d < 0.6))
        count = 1 + (rng.binomial(2, 0.35) if hard else 0)
        main = rng.uniform(0.10, 0.22 if hard else 0.28) * min(radii)
        for i in range(count):
            radius = main if i == 0 else rng.uniform(1.5, 4.0)
            kind = rng.choice(["rim", "net", "solid"], p=[0.7, 0.2, 0.1] if i == 0 else [0.2, 0.2, 0.6])
            spot = inner[rng.integers(len(inner))].astype(np.float32)
            one = _lesion(rng, points, brain, white, spot, radius, kind, rng.uniform(0.6, 1.6))
            if kind == "net":
                net |= one == NECROTIC_CORE
            labels = np.where(_RANK[one] > _RANK[labels], one, labels)

    jitter = np.exp(rng.normal(0, 0.08, (max(_SIGNAL) + 1, 4))).astype(np.float32)
    source = np.where(labels > 0, labels, tissue)
    source[net & (labels == NECROTIC_CORE)] = _NET
    image = np.zeros(shape + (4,), np.float32)
    for t, signal in _SIGNAL.items():
        image[source == t] = np.asarray(signal, np.float32) * jitter[t]
    heterogeneity = 1 + 0.12 * _waves(rng, points, 12, 0.9)
    image *= np.where(labels > 0, heterogeneity, 1 + 0.03 * heterogeneity)[..., None]
    image = ndimage.gaussian_filter(image, sigma=(0.7, 0.7, 0.7, 0))  # partial volume
    head = d <= 1.0
    terms = [rel[..., a] * rel[..., b] for a in range(3) for b in range(a, 3)] + [rel[..., a] for a in range(3)]
    for m in range(4):  # each sequence: its own bias field, units and noise
        bias = np.exp(sum(rng.normal(0, 0.25 if hard else 0.1) * t for t in terms))
        signal = image[..., m] * bias
        sigma = signal[brain].mean() / rng.uniform(*((12, 25) if hard else (25, 40)))  # the case's SNR
        noisy = np.hypot(signal + sigma * rng.standard_normal(shape), sigma * rng.standard_normal(shape))
        image[..., m] = (noisy if hard else np.where(head, noisy, 0.0)) * rng.uniform(300, 3000)
    return image.astype(np.float32), labels
