"""The intensity normalisation of MRI inputs, defined once for training, inference and export.

Head voxels are those non-zero in any modality; each modality is z-scored with the mean and
standard deviation of its head voxels, and everything outside the head is set to 0. The mask is
decided voxel by voxel, so normalising a window with the whole case's statistics gives exactly the
values of normalising the whole case: that is how a serving client can send raw windows plus the
case's statistics, and the exported graph applies `normalize_ops`, the keras.ops twin of
`normalize_np`.
"""

from __future__ import annotations

import numpy as np
from keras import ops

MIN_STD = 1e-8


def head_mask(image: np.ndarray) -> np.ndarray:
    """Voxels non-zero in any modality of a (..., C) image."""
    return np.any(image != 0, axis=-1)


def head_statistics(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-modality (mean, std) over head voxels, as float32 arrays of shape (C,); (0, 1) for an empty head."""
    mask = head_mask(image)
    channels = image.shape[-1]
    mean, std = np.zeros(channels, np.float32), np.ones(channels, np.float32)
    if mask.any():
        values = image[mask].astype(np.float64)
        mean = values.mean(axis=0).astype(np.float32)
        std = np.maximum(values.std(axis=0), MIN_STD).astype(np.float32)
    return mean, std


def _broadcastable(stats: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Statistics of shape (C,) for one image, or (B, C) for a batch (B, ..., C), shaped to broadcast."""
    stats = np.asarray(stats, dtype=np.float32)
    if stats.ndim == 2:
        if stats.shape[0] != image.shape[0]:
            raise ValueError(f"statistics for {stats.shape[0]} images given for a batch of {image.shape[0]}")
        return stats.reshape((stats.shape[0],) + (1,) * (image.ndim - 2) + (stats.shape[1],))
    return stats


def normalize_np(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Z-score `image` (..., C) with per-modality `mean`/`std`; 0 outside the head.

    `mean` and `std` are (C,) for one image or a batch sharing them, or (B, C) for a batch
    (B, ..., C) whose items have their own statistics (the serving contract's layout).
    """
    mean, std = _broadcastable(mean, image), _broadcastable(std, image)
    out = (image.astype(np.float32) - mean) / np.maximum(std, MIN_STD)
    return np.where(head_mask(image)[..., None], out, 0.0).astype(np.float32)


def normalize_ops(image, mean, std):
    """keras.ops twin of `normalize_np` for a batch: image (B, ..., C), mean/std (B, C)."""
    image = ops.cast(image, "float32")
    spatial = len(image.shape) - 2
    shape = (-1,) + (1,) * spatial + (image.shape[-1],)
    mean = ops.reshape(ops.cast(mean, "float32"), shape)
    std = ops.maximum(ops.reshape(ops.cast(std, "float32"), shape), MIN_STD)
    head = ops.any(ops.not_equal(image, 0), axis=-1, keepdims=True)
    return ops.where(head, (image - mean) / std, ops.zeros_like(image))
