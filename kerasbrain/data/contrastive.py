"""Unlabelled 2-D images and SimCLR's two-view batches.

`discover_unlabelled` reads any 2-D layout kerasbrain knows (BRISC 2025, the Kaggle class
folders, LGG kaggle_3m) or, failing those, every image under a folder; labels are kept only so a
linear probe can score the representation later, never for training. `two_view_dataset` yields
batches of 2N images: two independent random augmentations of the same N slices, stacked, which
is the layout `SimCLRNet.compute_loss` expects.

Augmentation (per image on the tf.data side, strengths in `ViewAugment`): Keras core layers for a
random resized crop (a zoom into 60-100 % of each side with independent aspect jitter, then a
shift), left-right flips,
a small rotation, brightness and contrast jitter; then a separable Gaussian blur of half the views
and Gaussian noise as tf ops. No colour jitter: MRI slices are grey, and hue would teach the
encoder nothing about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.pictures import PICTURE_SUFFIXES
from kerasbrain.data.tumour_images import ImageSample, discover_tumour_images


def discover_unlabelled(root: str | Path) -> list[ImageSample]:
    """Every training image of a supported 2-D layout (labels kept for probing), or every image in a folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    try:
        return discover_tumour_images(root)
    except DataError:
        pass
    try:
        from kerasbrain.data.lgg import discover_lgg

        return [ImageSample(f"{s.patient}/{s.image.stem}", s.image, None, None, "train")
                for s in discover_lgg(root, require_masks=False)]
    except DataError:
        pass
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
                   and not p.stem.endswith("_mask") and "masks" not in p.parts)
    if not paths:
        raise DataError(f"{root}: no images found (JPEG/PNG/TIFF)")
    return [ImageSample(str(p.relative_to(root).with_suffix("")), p, None, None, "train") for p in paths]


@dataclass(frozen=True)
class ViewAugment:
    """How strongly the two views of a slice differ (SimCLR's augmentation, tuned for grey MRI).

    Milder than SimCLR's ImageNet recipe (crops down to 8 % of the area, colour jitter 0.8): slices
    of one dataset look far more alike than photographs, and on 180 phantom slices that recipe left
    NT-Xent at chance (ln(2N - 1)) for 40 steps while these settings learned from the first epoch.
    """

    def __post_init__(self):
        from kerasbrain.config import check

        lo, hi = self.crop_side
        check(0 < lo <= hi <= 1, "crop_side", "must be 0 < low <= high <= 1", self.crop_side)
        check(0 <= self.blur_probability <= 1, "blur_probability", "must be in [0, 1]", self.blur_probability)

    crop_side: tuple[float, float] = (0.6, 1.0)  # random resized crop: fraction of each side kept
    shift: float = 0.1  # random translation, fraction of the side
    rotation_degrees: float = 10.0
    brightness: float = 0.2
    contrast: float = 0.3
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # pixels at 128 x 128, scaled with the image side
    noise_std: float = 0.03


def view_layers(augment: ViewAugment, seed: int = 0) -> list:
    """SimCLR's geometric and intensity augmentation for grey MRI slices, as Keras preprocessing layers.

    Blur and noise are applied after these by `random_blur` and a tf op: Keras' RandomGaussianBlur
    took 2 s per 32 images at 224 x 224 on a 2-core CPU (10x the rest of the pipeline), and its
    GaussianNoise is not a tf.data layer on the JAX backend.
    """
    import keras

    zoom = (augment.crop_side[0] - 1.0, augment.crop_side[1] - 1.0)  # negative zoom factors zoom in
    layers = [
        keras.layers.RandomZoom(zoom, zoom, fill_mode="reflect", seed=seed),  # resized crop with aspect jitter
        keras.layers.RandomTranslation(augment.shift, augment.shift, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomFlip("horizontal", seed=seed + 2),
        keras.layers.RandomRotation(augment.rotation_degrees / 360, fill_mode="constant", seed=seed + 3),
    ]
    if augment.brightness:
        layers.append(keras.layers.RandomBrightness(augment.brightness, value_range=(0.0, 1.0), seed=seed + 4))
    if augment.contrast:
        layers.append(keras.layers.RandomContrast(augment.contrast, value_range=(0.0, 1.0), seed=seed + 5))
    return layers


def random_blur(x, sigma_range=(0.1, 2.0), probability: float = 0.5):
    """Separable Gaussian blur with a random sigma per image (a tf op for tf.data), applied with `probability`."""
    import tensorflow as tf

    batch, channels = tf.shape(x)[0], x.shape[-1]
    scale = x.shape[1] / 128.0
    radius = int(round(3 * sigma_range[1] * scale))
    sigma = tf.random.uniform([batch], sigma_range[0] * scale, sigma_range[1] * scale)
    sigma = tf.where(tf.random.uniform([batch]) < probability, sigma, 1e-3)  # 1e-3: the identity
    r = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-tf.square(r)[None] / (2.0 * tf.square(sigma)[:, None]))
    kernel = tf.repeat(kernel / tf.reduce_sum(kernel, axis=1, keepdims=True), channels, axis=0)  # (B*C, k)
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    stacked = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, batch * channels])
    taps = tf.transpose(kernel)  # (k, B*C): one filter per image channel
    stacked = tf.nn.depthwise_conv2d(stacked, taps[:, None, :, None], [1, 1, 1, 1], "SAME")
    stacked = tf.nn.depthwise_conv2d(stacked, taps[None, :, :, None], [1, 1, 1, 1], "SAME")
    return tf.transpose(tf.reshape(stacked, [height, width, batch, channels]), [2, 0, 1, 3])


def two_view_dataset(images: np.ndarray, batch_size: int, seed: int = 0, augment: ViewAugment = ViewAugment()):
    """A repeated stream of (2 * batch_size, H, W, 3) float batches in [0, 1] and its steps per epoch.

    `images` are uint8 (N, H, W, 3); each batch is [view A of N images; view B of the same N].
    """
    import tensorflow as tf

    if len(images) < 2:
        raise DataError(f"contrastive learning needs at least 2 images, found {len(images)}")
    batch_size = min(batch_size, len(images))
    layers = view_layers(augment, seed)

    def view(x):
        for layer in layers:
            x = layer(x, training=True)
        if augment.blur_probability:
            x = random_blur(x, augment.blur_sigma, augment.blur_probability)
        return tf.clip_by_value(x + tf.random.normal(tf.shape(x), stddev=augment.noise_std), 0.0, 1.0)

    def pair(x):
        x = tf.cast(x, tf.float32) / 255.0
        return tf.concat([view(x), view(x)], axis=0)

    ds = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(batch_size, drop_remainder=True).map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), len(images) // batch_size
