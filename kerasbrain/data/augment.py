"""Joint image/label augmentation of 3-D patches (numpy/scipy, run inside the tf.data map), and each
patch's draw as the arrays the device path applies (`training/device_augment.py`).

Spatial transforms move image and labels together; labels use nearest-neighbour interpolation so
they stay integer. Probabilities and ranges follow nnU-Net's defaults for small rotations/scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


BIAS_TERMS = 9  # x, y, z, their squares and their three products
#: How a foreground patch picks its centre (`[training] fg_sampling`, drawn in `pipeline.PatchSampler`):
#: "voxels", any tumour voxel (edema, the largest part, most often); "classes" (nnU-Net's), one of
#: the target channels the case holds, drawn uniformly, then one of its voxels, so a small core or
#: enhancing rim is centred as often as the edema around it. Here, not in pipeline.py, so that the
#: configs can name it without importing Keras.
FG_SAMPLING = ("voxels", "classes")


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
    # one gamma for all channels (False, as before) or one per channel (True, nnU-Net's
    # synchronize_channels=False): the sequences' contrasts then move against each other, as they do
    # between scanners and protocols
    gamma_per_channel: bool = False
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


@dataclass
class AugmentDraw:
    """One patch's random augmentation, drawn on the host and applied on the host (`apply_augmentation`)
    or inside the compiled training step (`kerasbrain/training/device_augment.py`).

    Every field is the identity when its transform was not drawn, so both paths apply all of them.
    """

    matrix: np.ndarray  # 3x3 rotation / scaling about the patch centre
    flips: np.ndarray  # (3,) bool, applied after the spatial transform
    scale: np.ndarray  # (C,) multiplicative intensity
    shift: np.ndarray  # (C,) additive intensity
    gamma: np.ndarray  # (C,), on intensities rescaled to [0, 1] per channel
    noise_std: float
    noise_seed: int  # the device path draws its noise from this seed
    noise: np.ndarray | None  # the host path's noise, drawn with the rest
    blur_sigma: float  # voxels; 0 = none
    contrast: np.ndarray  # (C,) factors about each channel's mean
    contrast_drawn: bool  # the contrast step also clips to the old range, so it is skipped when not drawn
    low_resolution: float  # zoom of the simulated low resolution; 1 = none
    bias: np.ndarray  # (BIAS_TERMS,) coefficients of the quadratic bias field
    bias_strength: float  # 0 = none

    def spatial(self) -> np.ndarray:
        """The spatial transform and the flips as one matrix about the centre (a flip is exact on the grid)."""
        return self.matrix @ np.diag(np.where(self.flips, -1.0, 1.0))


def draw_augmentation(rng: np.random.Generator, cfg: AugmentConfig, channels: int,
                      noise_shape: tuple | None = None) -> AugmentDraw:
    """Draw one patch's augmentation with the probabilities and ranges of `cfg`.

    With `noise_shape` (the host path) the Gaussian noise itself is drawn; without, only its seed.
    """
    matrix = np.eye(3)
    if rng.uniform() < cfg.rotate_prob:
        matrix = _rotation(rng, cfg.rotate_degrees)
    if rng.uniform() < cfg.scale_prob:
        matrix = matrix / rng.uniform(*cfg.scale_range)
    flips = np.array([rng.uniform() < cfg.flip_prob for _ in range(3)])
    scale, shift = np.ones(channels), np.zeros(channels)
    if rng.uniform() < cfg.intensity_prob:
        scale = 1 + rng.uniform(-cfg.intensity_scale, cfg.intensity_scale, channels)
        shift = rng.uniform(-cfg.intensity_shift, cfg.intensity_shift, channels)
    gamma = np.ones(channels)
    if rng.uniform() < cfg.gamma_prob:
        gamma = rng.uniform(*cfg.gamma_range, channels) if cfg.gamma_per_channel else np.full(
            channels, rng.uniform(*cfg.gamma_range))
    noise_std, noise, noise_seed = 0.0, None, 0
    if rng.uniform() < cfg.noise_prob:
        noise_std = float(cfg.noise_std)
        if noise_shape is None:  # the device draws the noise from this seed
            noise_seed = int(rng.integers(2**31 - 1))
        else:  # the host draws it here, from the same stream as the rest (so seeded patches stay as they were)
            noise = rng.normal(0, cfg.noise_std, noise_shape).astype(np.float32)
    blur = float(rng.uniform(*cfg.blur_sigma)) if cfg.blur_prob and rng.uniform() < cfg.blur_prob else 0.0
    contrast, contrast_drawn = np.ones(channels), False
    if cfg.contrast_prob and rng.uniform() < cfg.contrast_prob:
        contrast, contrast_drawn = rng.uniform(*cfg.contrast_range, channels), True
    low_res = 1.0
    if cfg.low_resolution_prob and rng.uniform() < cfg.low_resolution_prob:
        low_res = float(rng.uniform(*cfg.low_resolution_zoom))
    bias, strength = np.zeros(BIAS_TERMS), 0.0
    if cfg.bias_field_prob and rng.uniform() < cfg.bias_field_prob:
        bias, strength = rng.normal(0, 1, BIAS_TERMS), float(cfg.bias_field_strength)
    return AugmentDraw(matrix, flips, scale, shift, gamma, noise_std, noise_seed, noise, blur, contrast, contrast_drawn,
                       low_res, bias, strength)


def augment(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig):
    """Randomly transform one (x, y, z, C) image and its (x, y, z) labels; returns new arrays."""
    return apply_augmentation(image, labels, draw_augmentation(rng, cfg, image.shape[-1], image.shape))


def apply_augmentation(image: np.ndarray, labels: np.ndarray, draw: AugmentDraw):
    """Apply one drawn augmentation to an (x, y, z, C) image and its (x, y, z) labels on the host."""
    image = np.array(image, dtype=np.float32, copy=True)
    labels = np.array(labels, copy=True)
    if not np.allclose(draw.matrix, np.eye(3)):
        image, labels = spatial_transform(image, labels, draw.matrix)
    for axis in np.flatnonzero(draw.flips):
        image, labels = np.flip(image, axis), np.flip(labels, axis)
    if np.any(draw.scale != 1) or np.any(draw.shift != 0):
        image = image * draw.scale + draw.shift
    if np.any(draw.gamma != 1.0):
        # gamma on intensities rescaled to [0, 1] per channel, then mapped back (nnU-Net's way)
        lo = image.min(axis=(0, 1, 2), keepdims=True)
        hi = image.max(axis=(0, 1, 2), keepdims=True)
        span = np.maximum(hi - lo, 1e-6)
        image = ((image - lo) / span) ** draw.gamma.astype(np.float32) * span + lo
    if draw.noise_std:
        noise = draw.noise if draw.noise is not None else np.random.default_rng(draw.noise_seed).normal(
            0, draw.noise_std, image.shape).astype(np.float32)
        image = image + noise
    image = _nnunet_intensity(image, draw)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(labels)


def resize_exact(volume: np.ndarray, shape, order: int) -> np.ndarray:
    """`volume` zoomed to exactly `shape` (any rank)."""
    from scipy import ndimage

    out = ndimage.zoom(volume, [t / s for t, s in zip(shape, volume.shape)], order=order, mode="nearest")
    pad = [(0, max(0, t - o)) for t, o in zip(shape, out.shape)]
    return np.pad(out, pad, mode="edge")[tuple(slice(0, t) for t in shape)]


def low_resolution_size(n: int, zoom: float) -> int:
    return max(1, int(round(n * zoom)))


def bias_terms(axes):
    """The quadratic bias field's terms at coordinates `axes` (x, y, z in [-1, 1]); works on numpy and keras.ops."""
    x, y, z = axes
    return [x, y, z, x * x, y * y, z * z, x * y, y * z, x * z]


def _nnunet_intensity(image: np.ndarray, draw: AugmentDraw) -> np.ndarray:
    """Blur, contrast, simulated low resolution and bias field, each when drawn."""
    from scipy import ndimage

    if draw.blur_sigma:
        s = draw.blur_sigma
        image = ndimage.gaussian_filter(image, (s, s, s, 0))
    if draw.contrast_drawn:
        factor = draw.contrast.astype(np.float32)
        mean = image.mean(axis=(0, 1, 2), keepdims=True)
        lo, hi = image.min(axis=(0, 1, 2), keepdims=True), image.max(axis=(0, 1, 2), keepdims=True)
        image = np.clip((image - mean) * factor + mean, lo, hi)
    if draw.low_resolution != 1.0:
        small = [low_resolution_size(s, draw.low_resolution) for s in image.shape[:3]]
        image = np.stack([resize_exact(resize_exact(image[..., c], small, 0), image.shape[:3], 3)
                          for c in range(image.shape[-1])], axis=-1)
    if draw.bias_strength:
        axes = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in image.shape[:3]], indexing="ij")
        field = sum(c * t for c, t in zip(draw.bias.astype(np.float32), bias_terms(axes)))
        field = draw.bias_strength * field / max(float(np.abs(field).max()), 1e-6)
        image = image * np.exp(field)[..., None]
    return image


# ---- one draw as the arrays the device step reads (training/device_augment.py) ---------------------


def parameter_specs(patch_size, channels: int) -> dict:
    """Name -> (shape, dtype) of one patch's parameters, in the order the pipeline carries them."""
    x, y, z = (int(s) for s in patch_size)
    return {"spatial": ((3, 3), "float32"), "scale": ((channels,), "float32"), "shift": ((channels,), "float32"),
            "gamma": ((channels,), "float32"), "noise_std": ((), "float32"), "noise_seed": ((2,), "int32"),
            "blur_x": ((x, x), "float32"), "blur_y": ((y, y), "float32"), "blur_z": ((z, z), "float32"),
            "contrast": ((channels,), "float32"), "contrast_drawn": ((), "float32"),
            "low_res_x": ((x, x), "float32"), "low_res_y": ((y, y), "float32"), "low_res_z": ((z, z), "float32"),
            "bias": ((BIAS_TERMS,), "float32"), "bias_strength": ((), "float32")}


def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """SciPy's 1-D Gaussian filter (reflect mode, truncate 4) as an n x n matrix: out = M @ line."""
    from scipy import ndimage

    if not sigma:
        return np.eye(n, dtype=np.float32)
    return ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0, mode="reflect").astype(np.float32)


def _low_resolution_matrix(n: int, zoom: float) -> np.ndarray:
    """The host path's down (nearest) and up (cubic) resampling of one axis as an n x n matrix."""
    if zoom == 1.0:
        return np.eye(n, dtype=np.float32)
    small = (low_resolution_size(n, zoom),)
    columns = [resize_exact(resize_exact(e, small, 0), (n,), 3) for e in np.eye(n)]
    return np.stack(columns, axis=1).astype(np.float32)


def device_parameters(draw: AugmentDraw, patch_size) -> dict:
    """One draw as float32/int32 arrays (`parameter_specs`), everything the device step needs."""
    x, y, z = (int(s) for s in patch_size)
    f32 = np.float32
    return {"spatial": draw.spatial().astype(f32), "scale": draw.scale.astype(f32), "shift": draw.shift.astype(f32),
            "gamma": draw.gamma.astype(f32), "noise_std": f32(draw.noise_std),
            "noise_seed": np.array([draw.noise_seed, 0], np.int32),
            "blur_x": _blur_matrix(x, draw.blur_sigma), "blur_y": _blur_matrix(y, draw.blur_sigma),
            "blur_z": _blur_matrix(z, draw.blur_sigma),
            "contrast": draw.contrast.astype(f32), "contrast_drawn": f32(draw.contrast_drawn),
            "low_res_x": _low_resolution_matrix(x, draw.low_resolution),
            "low_res_y": _low_resolution_matrix(y, draw.low_resolution),
            "low_res_z": _low_resolution_matrix(z, draw.low_resolution),
            "bias": draw.bias.astype(f32), "bias_strength": f32(draw.bias_strength)}
