"""Snap a coarse pseudo-mask to the image: GrabCut (Rother et al. 2004) seeded by the activation map.

A class activation map says roughly where the evidence is, at a stride of 8-32 pixels; a tumour's
edge is where its signal changes. GrabCut fits a colour model to the foreground and to the
background and cuts the image along strong edges (a graph cut over a CRF of the pixels), starting
from a trimap drawn from the map:

- outside the head: background, certainly;
- the map's core (inside the thresholded mask, normalised heat >= `core` of its peak): foreground,
  certainly;
- the rest of the head, the rest of the coarse mask included: probably background.

The coarse mask is not marked "probably foreground": its normal tissue would teach the foreground
model the brain's own signal, and the cut would take the whole head (it did, in the test's
picture). The cut's foreground that touches the certain core is kept (so it cannot wander off to
another bright structure); where it gives nothing, or more than `max_growth` times the coarse
mask's area, the coarse mask is returned unchanged. OpenCV's implementation; the image is the
model's input picture (uint8 RGB).
"""

from __future__ import annotations

import numpy as np

REFINEMENTS = ("none", "grabcut")


def grabcut_refine(rgb: np.ndarray, heat: np.ndarray, head: np.ndarray, coarse: np.ndarray, core: float = 0.8,
                   iterations: int = 5, max_growth: float = 2.0) -> np.ndarray:
    """The coarse boolean mask (H, W) refined by GrabCut on `rgb` (H, W, 3 uint8), seeded as above."""
    import cv2

    coarse = coarse.astype(bool)
    if not coarse.any() or not head.any():
        return coarse
    certain = coarse & (heat >= core * heat[coarse].max())
    trimap = np.full(heat.shape, cv2.GC_PR_BGD, np.uint8)
    trimap[~head] = cv2.GC_BGD
    trimap[certain] = cv2.GC_FGD
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    image = np.ascontiguousarray(rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=-1), np.uint8)
    cv2.grabCut(image, trimap, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    cut = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
    _, labels = cv2.connectedComponents(cut.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[certain & cut])
    refined = np.isin(labels, keep[keep > 0]) & head
    if not refined.any() or refined.sum() > max_growth * coarse.sum():
        return coarse
    return refined
