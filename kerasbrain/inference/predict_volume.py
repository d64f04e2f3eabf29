"""Whole-case prediction: files in, label map (and probabilities) out in the input's own space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from kerasbrain.data.io.nifti import write_prediction
from kerasbrain.data.labels import regions_to_labels
from kerasbrain.data.layouts import Case, CaseFiles, load_case
from kerasbrain.data.preprocess import Preprocessed, preprocess_case
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.postprocess import postprocess_with
from kerasbrain.inference.sliding_window import sliding_window_predict


def predict_probabilities(pre: Preprocessed, predict, out_channels: int, cfg: InferenceConfig, progress=None,
                          moments: bool = False):
    """Region probabilities (X, Y, Z, C) on the case's full canonical grid (0 outside the crop); with
    `moments`, (X, Y, Z, 2C): the mirror members' mean, then their mean of squares.

    `pre` holds the raw cropped image and its statistics; `predict(raw batch, mean, std)` is a
    local (`kerasbrain.runtime.predictor`) or remote (`kerasbrain.serving.client`) window predictor.
    A local predictor may blend the whole volume on the device instead (`cfg.blend`), a remote one
    may send the whole case in one request (`segment_case`).
    """
    volume = getattr(predict, "volume_predictor", None)
    device = volume(cfg.window, cfg.overlap, cfg.batch_size, cfg.mirror, cfg.blend, moments) if volume else None
    probs = device(pre.image, pre.mean, pre.std) if device is not None else None  # None: go by windows
    if probs is not None:
        if progress:
            progress(1, 1)
    else:
        mean, std = pre.mean[None], pre.std[None]

        def predict_windows(batch):
            n = len(batch)
            return predict(batch, np.repeat(mean, n, axis=0), np.repeat(std, n, axis=0))

        probs = sliding_window_predict(pre.image, predict_windows, cfg.window, out_channels, cfg.overlap,
                                       cfg.batch_size, cfg.mirror, progress, moments)
    crop_shape = tuple(b - a for a, b in pre.bbox)
    if probs.shape[:3] != crop_shape:  # undo resampling
        factors = [c / p for c, p in zip(crop_shape, probs.shape[:3])] + [1.0]
        probs = ndimage.zoom(probs, factors, order=1)
    full = np.zeros(tuple(pre.full_shape) + (probs.shape[-1],), dtype=np.float32)
    full[tuple(slice(a, b) for a, b in pre.bbox)] = probs
    return full


def predict_case(case: Case, predict, out_channels: int, cfg: InferenceConfig, target_spacing=None, progress=None):
    """Return (internal labels, region probabilities), both canonical full-grid arrays."""
    pre = preprocess_case(case, target_spacing, normalize=False)
    probs = predict_probabilities(pre, predict, out_channels, cfg, progress)
    labels = postprocess_with(regions_to_labels(probs >= cfg.threshold), case.grid.spacing, cfg)
    return labels, probs


def predict_case_uncertain(case: Case, predict, out_channels: int, cfg: InferenceConfig, target_spacing=None,
                           progress=None):
    """As `predict_case`, with mirror TTA on and the members' spread kept: (labels, `Uncertainty`).

    The members are the 8 mirror views, times the ensemble's networks when `predict` runs an
    ensemble locally (its `member_moments`). The label map is the one mirror TTA gives without
    uncertainty (the same mean probabilities)."""
    from dataclasses import replace

    from kerasbrain.inference.sliding_window import flips
    from kerasbrain.inference.uncertainty import Uncertainty

    cfg = replace(cfg, mirror=True)
    networks = 1
    member_moments = getattr(predict, "member_moments", None)
    ensemble = member_moments() if member_moments else None
    if ensemble is not None:
        predict, networks = ensemble, ensemble.model.member_count
    pre = preprocess_case(case, target_spacing, normalize=False)
    moments = predict_probabilities(pre, predict, out_channels, cfg, progress, moments=True)
    uncertainty = Uncertainty.from_moments(moments, len(flips(3, True)) * networks, networks)
    labels = postprocess_with(regions_to_labels(uncertainty.probabilities >= cfg.threshold), case.grid.spacing, cfg)
    return labels, uncertainty


def predict_files(case_files: CaseFiles, predict, out_channels: int, cfg: InferenceConfig, out: str | Path,
                  save_probabilities: bool = False, layout: str | None = None, target_spacing=None, progress=None):
    """Files in, files out: load, predict, write; returns (case, labels, written paths)."""
    case = load_case(case_files, with_labels=True)
    labels, probs = predict_case(case, predict, out_channels, cfg, target_spacing, progress)
    written = write_prediction(case, labels, out, probs if save_probabilities else None, layout)
    return case, labels, written
