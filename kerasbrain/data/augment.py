"""Joint image/label augmentation of 3-D patches (numpy/scipy, run inside the tf.data map).

Spatial transforms move image and labels together; labels use nearest-neighbour interpolation so
they stay integer. Probabilities and ranges follow nnU-Net's defaults for small rotations/scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip_prob: float = 0.5  # per axis
    rotate_prob: float = 0.2
    rotate_degrees: float = 15.0
    scale_prob: float = 0.2
    scale_range: tuple[float, float] = (0.85, 1.15)
    intensity_prob: float = 0.3
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1
    gamma_prob: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    noise_prob: float = 0.15
    noise_std: float = 0.1
    # nnU-Net's further intensity transforms; off by default (0), so older configs train as before
    blur_prob: float = 0.0  # nnU-Net: 0.2; Gaussian blur, sigma in blur_sigma voxels
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    contrast_prob: float = 0.0  # nnU-Net: 0.15; contrast about the mean, clipped to the old range
    contrast_range: tuple[float, float] = (0.75, 1.25)
    low_resolution_prob: float = 0.0  # nnU-Net: 0.25; down-sampled (nearest) and back (cubic)
    low_resolution_zoom: tuple[float, float] = (0.5, 1.0)
    bias_field_prob: float = 0.0  # a smooth multiplicative field, exp(strength * quadratic in x, y, z)
    bias_field_strength: float = 0.3


def _rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    angles = np.deg2rad(rng.uniform(-max_degrees, max_degrees, 3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def spatial_transform(image, labels, matrix: np.ndarray):
    """Apply a 3x3 linear map about the patch centre; trilinear for the image, nearest for labels."""
    from scipy import ndimage  # imported here so reading a config does not load SciPy

    centre = (np.array(labels.shape) - 1) / 2.0
    offset = centre - matrix @ centre
    out = np.empty_like(image)
    for c in range(image.shape[-1]):
        out[..., c] = ndimage.affine_transform(image[..., c], matrix, offset, order=1, mode="constant", cval=0.0)
    lab = ndimage.affine_transform(labels, matrix, offset, order=0, mode="constant", cval=0)
    return out, lab


def augment(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig):
    """Randomly transform one (x, y, z, C) image and its (x, y, z) labels; returns new arrays."""
    image = np.array(image, dtype=np.float32, copy=True)
    labels = np.array(labels, copy=True)
    matrix = np.eye(3)
    if rng.uniform() < cfg.rotate_prob:
        matrix = _rotation(rng, cfg.rotate_degrees)
    if rng.uniform() < cfg.scale_prob:
        matrix = matrix / rng.uniform(*cfg.scale_range)
    if not np.allclose(matrix, np.eye(3)):
        image, labels = spatial_transform(image, labels, matrix)
    for axis in range(3):
        if rng.uniform() < cfg.flip_prob:
            image, labels = np.flip(image, axis), np.flip(labels, axis)
    if rng.uniform() < cfg.intensity_prob:
        scale = 1 + rng.uniform(-cfg.intensity_scale, cfg.intensity_scale, image.shape[-1])
        shift = rng.uniform(-cfg.intensity_shift, cfg.intensity_shift, image.shape[-1])
        image = image * scale + shift
    if rng.uniform() < cfg.gamma_prob:
        # gamma on intensities rescaled to [0, 1] per channel, then mapped back (nnU-Net's way)
        lo = image.min(axis=(0, 1, 2), keepdims=True)
        hi = image.max(axis=(0, 1, 2), keepdims=True)
        span = np.maximum(hi - lo, 1e-6)
        image = ((image - lo) / span) ** rng.uniform(*cfg.gamma_range) * span + lo
    if rng.uniform() < cfg.noise_prob:
        image = image + rng.normal(0, cfg.noise_std, image.shape).astype(np.float32)
    image = _nnunet_intensity(image, rng, cfg)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(labels)


def _resized(volume: np.ndarray, shape, order: int) -> np.ndarray:
    """(x, y, z) `volume` zoomed to exactly `shape`."""
    from scipy import ndimage

    out = ndimage.zoom(volume, [t / s for t, s in zip(shape, volume.shape)], order=order, mode="nearest")
    pad = [(0, max(0, t - o)) for t, o in zip(shape, out.shape)]
    return np.pad(out, pad, mode="edge")[: shape[0], : shape[1], : shape[2]]


def _nnunet_intensity(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Blur, contrast, simulated low resolution and bias field; each draws only when enabled."""
    from scipy import ndimage

    if cfg.blur_prob and rng.uniform() < cfg.blur_prob:
        sigma = rng.uniform(*cfg.blur_sigma)
        image = ndimage.gaussian_filter(image, (sigma, sigma, sigma, 0))
    if cfg.contrast_prob and rng.uniform() < cfg.contrast_prob:
        factor = rng.uniform(*cfg.contrast_range, image.shape[-1]).astype(np.float32)
        mean = image.mean(axis=(0, 1, 2), keepdims=True)
        lo, hi = image.min(axis=(0, 1, 2), keepdims=True), image.max(axis=(0, 1, 2), keepdims=True)
        image = np.clip((image - mean) * factor + mean, lo, hi)
    if cfg.low_resolution_prob and rng.uniform() < cfg.low_resolution_prob:
        zoom = rng.uniform(*cfg.low_resolution_zoom)
        small = [max(1, int(round(s * zoom))) for s in image.shape[:3]]
        image = np.stack([_resized(_resized(image[..., c], small, 0), image.shape[:3], 3)
                          for c in range(image.shape[-1])], axis=-1)
    if cfg.bias_field_prob and rng.uniform() < cfg.bias_field_prob:
        axes = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in image.shape[:3]], indexing="ij")
        terms = list(axes) + [a * a for a in axes] + [axes[0] * axes[1], axes[1] * axes[2], axes[0] * axes[2]]
        field = sum(c * t for c, t in zip(rng.normal(0, 1, len(terms)).astype(np.float32), terms))
        field = cfg.bias_field_strength * field / max(float(np.abs(field).max()), 1e-6)
        image = image * np.exp(field)[..., None]
    return image
