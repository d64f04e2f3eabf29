"""Sliding-window prediction over a whole volume with Gaussian-weighted window blending.

The volume is covered by windows whose starts are spaced by `window * (1 - overlap)`; each
window's output is weighted by a Gaussian centred on it (sigma = window / 8, as nnU-Net), so the
less reliable window borders count less, then the weighted sum is normalised. Windows go to the
model in batches; optional mirror test-time augmentation averages predictions over flips.
With `moments=True` the second moment of the mirror members' probabilities is blended beside their
mean, so their spread (an uncertainty: `inference/uncertainty.py`) costs no extra model call. A
predictor that averages members itself (an ensemble's `moments_model`) returns their mean and mean
of squares, which are blended as they are (`mean_and_square`).
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
from scipy import ndimage


def gaussian_importance(window: tuple[int, ...], sigma_scale: float = 1 / 8) -> np.ndarray:
    """Gaussian weight map of `window` shape, max 1, with a floor so no voxel weighs 0."""
    impulse = np.zeros(window, dtype=np.float32)
    impulse[tuple(w // 2 for w in window)] = 1
    g = ndimage.gaussian_filter(impulse, [w * sigma_scale for w in window], mode="constant", cval=0)
    g = g / g.max()
    return np.maximum(g, g[g > 0].min()).astype(np.float32)


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start offsets covering [0, size) with windows of `window`, the last one flush with the end."""
    if size <= window:
        return [0]
    step = max(int(window * (1 - overlap)), 1)
    n = int(np.ceil((size - window) / step)) + 1
    return sorted({int(round(i * (size - window) / (n - 1))) for i in range(n)})


def window_positions(shape, window, overlap: float) -> list[tuple[int, ...]]:
    """Start corners of every window covering `shape` (the product of `window_starts` per axis)."""
    return list(itertools.product(*[window_starts(s, w, overlap) for s, w in zip(shape, window)]))


def pad_to_window(image: np.ndarray, window) -> np.ndarray:
    """Zero-pad a (*spatial, C) image at the far end of each axis shorter than the window."""
    pad = [(0, max(w - s, 0)) for s, w in zip(image.shape[:-1], window)]
    return np.pad(image, pad + [(0, 0)]) if any(p[1] for p in pad) else image


def flips(spatial_dims: int, mirror: bool) -> list[tuple[int, ...]]:
    """Axis sets to mirror for test-time augmentation (just the identity when off)."""
    axes = range(spatial_dims)
    if not mirror:
        return [()]
    return [c for r in range(spatial_dims + 1) for c in itertools.combinations(axes, r)]


def mean_and_square(pred, out_channels: int):
    """A prediction's mean and mean of squares over its members (numpy arrays or keras tensors).

    One network is one member: (pred, pred^2). An ensemble's moments model already gives its members'
    weighted mean and mean of squares as 2 x out_channels channels, which are split, not squared.
    """
    if pred.shape[-1] == 2 * out_channels:
        return pred[..., :out_channels], pred[..., out_channels:]
    return pred, pred * pred


def sliding_window_predict(image: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], window, out_channels: int,
                           overlap: float = 0.5, batch_size: int = 1, mirror: bool = False,
                           progress: Callable[[int, int], None] | None = None, moments: bool = False) -> np.ndarray:
    """Predict a (*spatial, C) volume window by window; returns (*spatial, out_channels) float32, or
    (*spatial, 2 * out_channels) with `moments`: the members' mean, then their mean of squares.

    `predict` maps a batch (B, *window, C) to (B, *window, out_channels). Volumes smaller than the
    window are zero-padded and cropped back.
    """
    spatial = image.shape[:-1]
    window = tuple(int(w) for w in window)
    padded = pad_to_window(image, window)
    shape = padded.shape[:-1]
    weight = gaussian_importance(window)
    acc = np.zeros(shape + (out_channels * (2 if moments else 1),), dtype=np.float32)
    norm = np.zeros(shape, dtype=np.float32)
    starts = window_positions(shape, window, overlap)
    mirror_sets = flips(len(window), mirror)
    total, done = len(starts), 0
    for i in range(0, total, batch_size):
        chunk = starts[i:i + batch_size]
        slices = [tuple(slice(s, s + w) for s, w in zip(st, window)) for st in chunk]
        batch = np.stack([padded[sl] for sl in slices]).astype(np.float32)
        out = np.zeros(batch.shape[:-1] + (out_channels,), dtype=np.float32)
        squares = np.zeros_like(out) if moments else None
        for axes in mirror_sets:
            ax = tuple(a + 1 for a in axes)
            flipped = np.flip(batch, ax) if ax else batch
            pred = np.asarray(predict(np.ascontiguousarray(flipped)), dtype=np.float32)
            pred = np.flip(pred, ax) if ax else pred
            mean, square = mean_and_square(pred, out_channels)
            out += mean
            if moments:
                squares += square
        out /= len(mirror_sets)
        if moments:
            out = np.concatenate([out, squares / len(mirror_sets)], axis=-1)
        for sl, o in zip(slices, out):
            acc[sl] += o * weight[..., None]
            norm[sl] += weight
        done += len(chunk)
        if progress:
            progress(done, total)
    result = acc / norm[..., None]
    return result[tuple(slice(0, s) for s in spatial)]
