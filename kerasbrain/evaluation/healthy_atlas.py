"""Pseudo-mask seeds from the "no tumour" images: where a tumour image departs from healthy heads.

Class activation maps say where a classifier looked, at 1/16 of the image's resolution, and on
kerasbrain's phantoms they overlap the drawn tumours poorly (pooled Dice 0.11-0.19,
bench/results_cpu_2026-12-05/pseudomasks_sweep.jsonl). The "no tumour" class is evidence of what
normal tissue looks like, pixel by pixel: every image is brought to one frame (its head's bounding
box resized to `size` x `size`, so heads of other sizes and places line up), blurred and z-scored
over its head; the healthy images give each pixel's mean and spread. A tumour image's deviation
|z - mean| / (spread + floor), smoothed, is its seed map; the mask is what exceeds the
`quantile`-th percentile of the healthy images' own deviations (a threshold chosen without a
single drawn mask), reduced to the component of largest total deviation, and mapped back to the
image's own frame. No classifier is needed for the map; the class only decides which images are
tumour images (their label, or the classifier's prediction where none is known).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kerasbrain.data.classes import NO_TUMOR


def head_region(rgb: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Everything brighter than `fraction` of the image's 99th percentile, holes filled, largest part.

    Looser than `pseudomask.head_mask`'s Otsu cut, which drops dark tissue inside the head (CSF,
    necrosis) and so moves the head box and the z-score by image content.
    """
    import cv2
    from scipy import ndimage

    from kerasbrain.evaluation.pseudomask import largest_components

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    top = float(np.percentile(grey, 99))
    if top <= 0:
        return np.zeros(grey.shape, bool)
    head = ndimage.binary_fill_holes(grey > fraction * top)
    return ndimage.binary_fill_holes(largest_components(head, 1))


def _head_box(head: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(head)
    if not len(rows):
        return 0, head.shape[0], 0, head.shape[1]
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


@dataclass
class HealthyAtlas:
    """Per-pixel mean and spread of healthy heads in the head-box frame, and the healthy deviation threshold."""

    mean: np.ndarray
    spread: np.ndarray
    threshold: float
    size: int = 128
    floor: float = 0.1  # added to the spread: a pixel that never varies does not make every change infinite
    smooth: float = 3.0  # Gaussian sigma of the deviation map, in atlas pixels
    blur: float = 1.5  # Gaussian sigma before z-scoring, in atlas pixels (noise is not a tumour)
    peak_fraction: float = 0.5  # the mask keeps the part of the component above this share of its peak

    @classmethod
    def fit(cls, healthy_rgb: np.ndarray, size: int = 128, floor: float = 0.1, smooth: float = 3.0,
            quantile: float = 99.5) -> "HealthyAtlas":
        """Fit on uint8 RGB images of healthy heads (N, H, W, 3); needs at least two."""
        if len(healthy_rgb) < 2:
            raise ValueError(f"a healthy atlas needs at least 2 'no tumour' images; got {len(healthy_rgb)}")
        atlas = cls(np.zeros((size, size), np.float32), np.ones((size, size), np.float32), 0.0, size, floor, smooth)
        frames = [atlas._frame(image) for image in healthy_rgb]
        z = np.stack([f[0] for f in frames])
        atlas.mean, atlas.spread = z.mean(axis=0), z.std(axis=0)
        scores = [atlas._deviation(zi, head)[head] for zi, head in ((f[0], f[1]) for f in frames)]
        atlas.threshold = float(np.percentile(np.concatenate(scores), quantile))
        return atlas

    def _frame(self, rgb: np.ndarray):
        """(z-scored grey image in the atlas frame, its head there, the head box in the image)."""
        import cv2
        from scipy import ndimage

        head = head_region(rgb)
        top, bottom, left, right = box = _head_box(head)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grey = cv2.resize(grey[top:bottom, left:right], (self.size, self.size), interpolation=cv2.INTER_AREA)
        inside = cv2.resize(head[top:bottom, left:right].astype(np.uint8), (self.size, self.size),
                            interpolation=cv2.INTER_NEAREST).astype(bool)
        grey = ndimage.gaussian_filter(grey, self.blur)
        values = grey[inside] if inside.any() else grey.ravel()
        z = (grey - np.median(values)) / (values.std() + 1e-6)
        return z.astype(np.float32), inside, box

    def _deviation(self, z: np.ndarray, inside: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        score = np.abs(z - self.mean) / (self.spread + self.floor)
        return np.where(inside, ndimage.gaussian_filter(score, self.smooth), 0.0).astype(np.float32)

    def deviation(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(deviation map, mask) of one uint8 RGB image, both at the image's own size."""
        import cv2
        from scipy import ndimage

        z, inside, (top, bottom, left, right) = self._frame(rgb)
        score = self._deviation(z, inside)
        mask = score > self.threshold
        labels, count = ndimage.label(mask)
        if count:
            mass = ndimage.sum(score, labels, range(1, count + 1))
            mask = labels == int(np.argmax(mass)) + 1
            # the smoothing spreads a strong departure beyond its edge: keep its half-maximum
            mask &= score > self.peak_fraction * float(score[mask].max())
        full_score = np.zeros(rgb.shape[:2], np.float32)
        full_mask = np.zeros(rgb.shape[:2], bool)
        shape = (right - left, bottom - top)
        full_score[top:bottom, left:right] = cv2.resize(score, shape, interpolation=cv2.INTER_LINEAR)
        full_mask[top:bottom, left:right] = cv2.resize(mask.astype(np.uint8), shape,
                                                       interpolation=cv2.INTER_NEAREST).astype(bool)
        return full_score, full_mask

    def make_masks(self, images: np.ndarray, labels: np.ndarray, classify=None, planes=None):
        """(masks, maps scaled to [0, 1], classes) for uint8 RGB images: the interface of `pseudo_masks`.

        `labels` are class indices, -1 where unknown; `classify(images) -> classes` fills those in.
        "No tumour" images get an empty mask. (`planes` is `PlaneAtlases`'; one atlas ignores it.)
        """
        classes = np.asarray(labels).copy()
        unknown = classes < 0
        if unknown.any():
            if classify is None:
                raise ValueError("images without a class need a classifier to say which are tumour images")
            classes[unknown] = np.asarray(classify(images[unknown]))
        masks = np.zeros(images.shape[:3], bool)
        maps = np.zeros(images.shape[:3], np.float32)
        for i, image in enumerate(images):
            score, mask = self.deviation(image)
            maps[i] = np.clip(score / max(2 * self.threshold, 1e-6), 0, 1)
            masks[i] = mask if classes[i] != NO_TUMOR else False
        return masks, maps, classes


def plane_of(name: str) -> str:
    """A BRISC 2025 file's imaging plane ("ax", "co", "sa": its name says it), or "" where it does not."""
    match = re.search(r"_(ax|co|sa)(?:_|$)", name)
    return match.group(1) if match else ""


class PlaneAtlases:
    """One `HealthyAtlas` per imaging plane (BRISC 2025 mixes axial, coronal and sagittal slices, which
    do not line up with each other), with one of every plane together for images whose plane is unknown
    or has fewer than `min_images` healthy images."""

    def __init__(self, healthy_rgb: np.ndarray, planes: list[str], min_images: int = 5, **settings):
        planes = list(planes)
        self.overall = HealthyAtlas.fit(healthy_rgb, **settings)
        self.by_plane = {plane: HealthyAtlas.fit(healthy_rgb[[p == plane for p in planes]], **settings)
                         for plane in set(planes) - {""} if planes.count(plane) >= min_images}

    def make_masks(self, images: np.ndarray, labels: np.ndarray, classify=None, planes=None):
        """`HealthyAtlas.make_masks`, each image against its own plane's atlas (`planes`, one per image)."""
        planes = list(planes) if planes is not None else [""] * len(images)
        masks = np.zeros(images.shape[:3], bool)
        maps = np.zeros(images.shape[:3], np.float32)
        classes = np.zeros(len(images), np.int64)
        for plane in set(planes):
            rows = np.array([p == plane for p in planes])
            atlas = self.by_plane.get(plane, self.overall)
            masks[rows], maps[rows], classes[rows] = atlas.make_masks(images[rows], np.asarray(labels)[rows], classify)
        return masks, maps, classes
