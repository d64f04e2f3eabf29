"""Input pipelines: random 3-D patches with foreground oversampling for `model.fit` (tf.data).

Cases come from the preprocessing cache as memory-mapped arrays, so an epoch never decodes NIfTI
and memory stays bounded however many cases there are. Each element is drawn by a seeded numpy
generator keyed on (seed, element index): runs are reproducible and parallel maps stay independent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.augment import (FG_SAMPLING, AugmentConfig, augment, device_parameters, draw_augmentation,
                                     parameter_specs)
from kerasbrain.data.labels import LABEL_CHANNEL_LABELS, REGION_LABELS, training_targets
from kerasbrain.data.preprocess import load_cached

_MAX_LOCATIONS = 10_000  # per class and case, as nnU-Net keeps: a case's memory stays ~40 kB a class


class PatchSampler:
    """Draws (image patch, target) pairs from cached cases; picklable and thread-safe. The targets
    are the WT/TC/ET regions, or with `targets="labels"` seed 003's three label channels."""

    def __init__(self, folders, patch_size, fg_fraction: float = 0.33, augment_config: AugmentConfig | None = None,
                 seed: int = 0, augment_on_device: bool = False, targets: str = "regions",
                 fg_sampling: str = "voxels"):
        if not folders:
            raise ValueError("PatchSampler needs at least one case")
        if fg_sampling not in FG_SAMPLING:
            raise ValueError(f"fg_sampling must be one of {', '.join(FG_SAMPLING)}. Received: {fg_sampling!r}")
        self.folders = [Path(f) for f in folders]
        self.patch_size = tuple(int(p) for p in patch_size)
        self.fg_fraction = float(fg_fraction)
        self.fg_sampling = fg_sampling
        self.augment_config = augment_config
        self.seed = int(seed)
        # on the device, a patch comes with its drawn parameters (`training/device_augment.py`)
        self.augment_on_device = bool(augment_on_device and augment_config is not None)
        self.targets = targets
        channels, self._to_targets = training_targets(targets)  # WT/TC/ET, or seed 003's label channels
        label_sets = REGION_LABELS if targets == "regions" else LABEL_CHANNEL_LABELS
        self._channel_labels = [label_sets[c] for c in channels]
        self._cases = {}

    def _case(self, i):
        if i not in self._cases:
            pre = load_cached(self.folders[i])
            fg_path = self.folders[i] / "foreground.npy"
            fg = np.load(fg_path, mmap_mode="r") if fg_path.exists() else np.zeros((0, 3), np.int32)
            held = self._class_locations(i, pre.labels, fg) if self.fg_sampling == "classes" else []
            self._cases[i] = (pre.image, pre.labels, fg, held)
        return self._cases[i]

    def _class_locations(self, i, labels, fg) -> list[np.ndarray]:
        """Per target channel the case holds, indices into its foreground voxels (at most _MAX_LOCATIONS,
        a fixed subsample per case)."""
        if not len(fg):
            return []
        at = labels[fg[:, 0], fg[:, 1], fg[:, 2]]
        rng = np.random.default_rng((self.seed, i, 1))
        held = []
        for channel_labels in self._channel_labels:
            where = np.flatnonzero(np.isin(at, channel_labels)).astype(np.int32)
            if len(where) > _MAX_LOCATIONS:
                where = np.sort(rng.choice(where, _MAX_LOCATIONS, replace=False))
            if len(where):
                held.append(where)
        return held

    def _foreground_centre(self, rng, fg, held) -> np.ndarray:
        """The voxel a foreground patch is centred on, as `fg_sampling` says (see FG_SAMPLING)."""
        if held:  # "classes": a channel the case holds, uniformly, then one of its voxels
            where = held[rng.integers(len(held))]
            return np.asarray(fg[where[rng.integers(len(where))]])
        return np.asarray(fg[rng.integers(len(fg))])

    def sample(self, index: int):
        rng = np.random.default_rng((self.seed, int(index)))
        image, labels, fg, held = self._case(int(rng.integers(len(self.folders))))
        shape = np.array(image.shape[:3])
        size = np.array(self.patch_size)
        if rng.uniform() < self.fg_fraction and len(fg):
            centre = self._foreground_centre(rng, fg, held)
            start = centre - size // 2 + rng.integers(-size // 4, size // 4 + 1)
        else:
            start = rng.integers(0, np.maximum(shape - size, 0) + 1)
        start = np.clip(start, np.minimum(shape - size, 0), np.maximum(shape - size, 0))
        img, lab = crop_or_pad(image, labels, start, size)
        if self.augment_on_device:
            draw = draw_augmentation(rng, self.augment_config, img.shape[-1])
            params = device_parameters(draw, self.patch_size)
            return (img, self._to_targets(lab).astype(np.float32), *params.values())
        if self.augment_config is not None:
            img, lab = augment(img, lab, rng, self.augment_config)
        return img, self._to_targets(lab).astype(np.float32)


def crop_or_pad(image, labels, start, size):
    """Crop [start, start+size) from the volume, padding with zeros where it runs outside."""
    out_img = np.zeros(tuple(size) + image.shape[3:], dtype=np.float32)
    out_lab = np.zeros(tuple(size), dtype=np.uint8)
    src = tuple(slice(max(s, 0), min(s + n, d)) for s, n, d in zip(start, size, image.shape[:3]))
    dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, start))
    out_img[dst] = image[src]
    out_lab[dst] = labels[src]
    return out_img, out_lab


def patch_dataset(sampler: PatchSampler, batch_size: int, num_patches: int | None = None,
                  num_parallel_calls=None, cache: bool = False):
    """A batched, prefetched dataset of patches. `num_patches=None` repeats forever (for training).

    A sampler that augments on the device yields `({"image", "augment": parameters}, target)`.
    `num_parallel_calls=None` is tf.data's AUTOTUNE. (TensorFlow is imported here, so the sampler
    itself runs where only JAX is installed, as on the GPU benchmark machine.)
    """
    import tensorflow as tf

    num_parallel_calls = num_parallel_calls or tf.data.AUTOTUNE
    size = sampler.patch_size
    channels = 4

    specs = {}
    if sampler.augment_on_device:
        specs = parameter_specs(size, channels)

    def draw(index):
        dtypes = (tf.float32, tf.float32) + tuple(tf.as_dtype(d) for _, d in specs.values())
        image, target, *params = tf.numpy_function(sampler.sample, [index], dtypes, stateful=False)
        image.set_shape(size + (channels,))
        target.set_shape(size + (3,))
        if not specs:
            return image, target
        for value, (shape, _) in zip(params, specs.values()):
            value.set_shape(shape)
        return {"image": image, "augment": dict(zip(specs, params))}, target

    indices = tf.data.Dataset.counter() if num_patches is None else tf.data.Dataset.range(num_patches)
    ds = indices.map(draw, num_parallel_calls=num_parallel_calls, deterministic=True)
    if cache:
        ds = ds.cache()
    return ds.batch(batch_size, drop_remainder=num_patches is None).prefetch(tf.data.AUTOTUNE)
