"""tf.data streams for the classification families: one stream of samples with a class, a mask or both.

Each element is `(image, targets, sample_weights)` with dicts keyed by task ("class", "mask"), so
`model.fit` needs no custom train step on any backend: a sample without a class or a mask carries
weight 0 for that task and its loss adds exactly nothing (its placeholder target is class 0 or an
empty mask). Schedules:
- "joint": one shuffled stream; each batch mixes samples and trains every task it has targets for.
- "alternate" (seed 001's balanced alternation): batches alternate between a classification batch
  (images with a class; mask weight 0) and a segmentation batch (images with a mask; class weight
  0), so each task gets the same number of steps whatever the datasets' sizes.
"""

from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("alternate", "joint")


def _targets(labels, masks, has_mask, tasks):
    """Targets and weights for the given tasks (placeholders where a sample lacks one)."""
    has_label = labels >= 0
    targets, weights = {}, {}
    if "class" in tasks:
        targets["class"] = np.where(has_label, labels, 0).astype(np.int32)
        weights["class"] = has_label.astype(np.float32)
    if "mask" in tasks:
        targets["mask"] = masks.astype(np.float32)
        weights["mask"] = has_mask.astype(np.float32)
    return targets, weights


def augment_fn(horizontal_flip: bool, rotation_degrees: float, seed: int):
    """A tf.data map applying one random transform to image and mask together (Keras core layers)."""
    import keras

    layers = []
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation_degrees:
        layers.append(keras.layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant", seed=seed + 1))

    def apply(x, y, w):
        if "mask" in y:
            data = {"images": x, "segmentation_masks": y["mask"]}
            for layer in layers:
                data = layer(data, training=True)
            return data["images"], {**y, "mask": data["segmentation_masks"]}, w
        for layer in layers:
            x = layer(x, training=True)
        return x, y, w

    return apply


def image_dataset(images, labels, masks, has_mask, batch_size: int, tasks=("class", "mask"),
                  schedule: str = "joint", augment=None, shuffle: bool = True, seed: int = 0):
    """A repeated (training) or single-pass (evaluation) stream and its steps per epoch.

    `images` are uint8 (N, H, W, 3), scaled to [0, 1] here; `augment` is (horizontal_flip,
    rotation_degrees) or None. Evaluation streams (`shuffle=False`) are one pass in order, joint.
    """
    import tensorflow as tf

    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}. Received: schedule={schedule!r}")
    tasks = tuple(tasks)

    def stream(index, task_filter=None):
        targets, weights = _targets(labels[index], masks[index], has_mask[index], tasks)
        if task_filter is not None:  # an alternation stream trains one task only
            weights = {k: (v if k == task_filter else np.zeros_like(v)) for k, v in weights.items()}
        ds = tf.data.Dataset.from_tensor_slices((images[index], targets, weights))
        if shuffle:
            ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(batch_size)
        ds = ds.map(lambda x, y, w: (tf.cast(x, tf.float32) / 255.0, y, w), num_parallel_calls=tf.data.AUTOTUNE)
        if augment is not None and shuffle:
            ds = ds.map(augment_fn(*augment, seed=seed), num_parallel_calls=tf.data.AUTOTUNE)
        return ds

    everything = np.arange(len(images))
    if not shuffle or schedule == "joint" or len(tasks) == 1:
        steps = math.ceil(len(everything) / batch_size)
        return stream(everything).prefetch(tf.data.AUTOTUNE), steps
    labelled = np.flatnonzero(labels >= 0)
    masked = np.flatnonzero(has_mask)
    if not len(labelled) or not len(masked):
        raise ValueError("alternating between tasks needs images with a class and images with a mask; "
                         f"found {len(labelled)} and {len(masked)} (use schedule = \"joint\")")
    per_task = max(math.ceil(len(labelled) / batch_size), math.ceil(len(masked) / batch_size))
    choice = tf.data.Dataset.range(2).repeat()
    ds = tf.data.Dataset.choose_from_datasets([stream(labelled, "class"), stream(masked, "mask")], choice)
    return ds.prefetch(tf.data.AUTOTUNE), 2 * per_task
