"""2-D slice preprocessing (seed 004: median filter + CLAHE) and the tf.data pipeline for LGG slices.

Joint augmentation uses Keras core's preprocessing layers on {"images", "segmentation_masks"}
dictionaries, which apply one random transform to both and resample masks with nearest
neighbour, so masks stay binary and move with their image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kerasbrain.data.lgg import SliceFiles, read_slice


def median_clahe(image: np.ndarray, clip_limit: float = 3.0, tiles: int = 8, median: int = 3) -> np.ndarray:
    """Seed 004's enhancement: 3 x 3 median filter, then CLAHE per channel (uint8 in, uint8 out)."""
    clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))
    filtered = cv2.medianBlur(np.ascontiguousarray(image), median)
    return np.stack([clahe.apply(np.ascontiguousarray(filtered[..., c])) for c in range(image.shape[-1])], axis=-1)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] (the networks' input scale)."""
    return image.astype(np.float32) / 255.0


@dataclass(frozen=True)
class SliceAugment:
    flip: bool = True
    rotation_degrees: float = 35.0  # seed 002: +-35 degrees
    elastic: bool = True
    elastic_scale: float = 0.5


def load_slices(files: list[SliceFiles], enhance: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read slices into (N, H, W, 3) float32 images and (N, H, W, 1) float32 masks."""
    images, masks = [], []
    for f in files:
        image, mask = read_slice(f)
        images.append(to_float(median_clahe(image) if enhance else image))
        masks.append(mask[..., None].astype(np.float32))
    return np.stack(images), np.stack(masks)


def augmentation_layers(cfg: SliceAugment, seed: int = 0):
    import keras

    layers = []
    if cfg.flip:
        layers.append(keras.layers.RandomFlip("horizontal_and_vertical", seed=seed))
    if cfg.rotation_degrees:
        layers.append(keras.layers.RandomRotation(cfg.rotation_degrees / 360.0, fill_mode="constant", seed=seed + 1))
    if cfg.elastic:
        layers.append(keras.layers.RandomElasticTransform(scale=cfg.elastic_scale, seed=seed + 2))
    return layers


def slice_dataset(images: np.ndarray, masks: np.ndarray, batch_size: int, augment: SliceAugment | None = None,
                  shuffle: bool = True, seed: int = 0):
    """A batched tf.data pipeline of (image, mask) pairs, with joint augmentation when asked."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, masks))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        layers = augmentation_layers(augment, seed)

        def apply(x, y):
            data = {"images": x, "segmentation_masks": y}
            for layer in layers:
                data = layer(data, training=True)
            return data["images"], data["segmentation_masks"]

        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
