"""Patch batches for `model.fit` without TensorFlow: a `keras.utils.PyDataset` over the `PatchSampler`.

The same stream as `pipeline.patch_dataset` (tf.data): batch b holds patches b * batch_size ...
(b + 1) * batch_size - 1 of the sampler, drawn by its seeded generator, so both pipelines give the
same batches byte for byte. It is what a machine with JAX and no TensorFlow (a GPU box with a
CUDA JAX, say) trains from; `patch_stream` picks one of the two (`[training] input_pipeline`).
Workers are threads, as tf.data's `numpy_function` workers are: both run the sampler's Python under
one lock, and its SciPy resampling outside it (two threads drew 1.9x one thread's augmented patches
on 2 cores, README); threads also share the memory-mapped cases, where processes would be forks of
a process that runs JAX.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np

from kerasbrain.data.augment import parameter_specs
from kerasbrain.data.pipeline import PatchSampler, patch_dataset
from kerasbrain.runtime import has_tensorflow
from kerasbrain.training.config import INPUT_PIPELINES

IMAGE_CHANNELS = 4


def resolve_input_pipeline(name: str) -> str:
    """"auto" is tf.data where TensorFlow is installed (the pipeline measured since seed 003) and Keras's
    PyDataset where it is not; naming "tf.data" without TensorFlow fails in one line."""
    if name not in INPUT_PIPELINES:
        raise ValueError(f"input_pipeline must be one of {', '.join(map(repr, INPUT_PIPELINES))}. Received: {name!r}")
    if name == "auto":
        return "tf.data" if has_tensorflow() else "pydataset"
    if name == "tf.data" and not has_tensorflow():
        raise ValueError('input_pipeline = "tf.data" needs TensorFlow, which is not installed here; '
                         'use "pydataset" or "auto"')
    return name


class PatchBatches(keras.utils.PyDataset):
    """Batches of sampler patches: endless for training (`num_patches=None`), else `num_patches` in
    ceil(num_patches / batch_size) batches, the last one short, as tf.data's unpadded batching.

    `first_batch` skips the batches a resumed run already trained on; `to_targets(image, target)`
    maps each batch (deep supervision's target pyramid); `cache` keeps a finite stream's batches in
    memory after their first draw (validation patches, as tf.data's `cache()`).
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, num_patches: int | None = None, first_batch: int = 0,
                 to_targets=None, cache: bool = False, workers: int = 0, max_queue_size: int = 4):
        super().__init__(workers=workers or os.cpu_count() or 1, use_multiprocessing=False,
                         max_queue_size=max_queue_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.num_patches = num_patches
        self.first_batch = int(first_batch)
        self.to_targets = to_targets
        self._cache = {} if cache and num_patches is not None else None
        self._specs = parameter_specs(sampler.patch_size, IMAGE_CHANNELS) if sampler.augment_on_device else {}

    @property
    def num_batches(self):
        return None if self.num_patches is None else math.ceil(self.num_patches / self.batch_size)

    def __len__(self):
        if self.num_patches is None:
            raise TypeError("an endless PatchBatches has no length")
        return self.num_batches

    def __getitem__(self, index):
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        if self.num_patches is not None and not 0 <= index < self.num_batches:
            raise IndexError(f"batch {index} of a stream of {self.num_batches}")
        first = (self.first_batch + index) * self.batch_size
        last = first + self.batch_size if self.num_patches is None else min(first + self.batch_size, self.num_patches)
        batch = self._stack([self.sampler.sample(i) for i in range(first, last)])
        if self._cache is not None:
            # read-only, so TensorFlow copies them: it may take a writable array's memory as a tensor's
            # buffer and reuse it (seen under MirroredStrategy: the cached batches changed after epoch 1)
            for array in keras.tree.flatten(batch):
                array.flags.writeable = False
            self._cache[index] = batch
        return batch

    def _stack(self, items):
        image = np.stack([item[0] for item in items]).astype(np.float32, copy=False)
        target = np.stack([item[1] for item in items]).astype(np.float32, copy=False)
        if self._specs:  # device augmentation: each patch's drawn parameters, as patch_dataset names them
            params = {name: np.stack([item[2 + k] for item in items]).astype(dtype, copy=False)
                      for k, (name, (_, dtype)) in enumerate(self._specs.items())}
            image = {"image": image, "augment": params}
        return self.to_targets(image, target) if self.to_targets else (image, target)

    @property
    def element_spec(self):
        """The batches' structure as Keras tensors with an open batch axis: what `fit` builds the
        model, losses and metrics from before its first step (`training/scaffold.py`)."""
        size = self.sampler.patch_size
        image = np.zeros((1, *size, IMAGE_CHANNELS), np.float32)
        if self._specs:
            image = {"image": image, "augment": {name: np.zeros((1, *shape), dtype)
                                                 for name, (shape, dtype) in self._specs.items()}}
        target = np.zeros((1, *size, 3), np.float32)
        batch = self.to_targets(image, target) if self.to_targets else (image, target)
        return keras.tree.map_structure(lambda a: keras.KerasTensor((None, *a.shape[1:]), str(a.dtype)), batch)


def patch_stream(sampler: PatchSampler, batch_size: int, pipeline: str = "auto", num_patches: int | None = None,
                 first_batch: int = 0, to_targets=None, cache: bool = False, workers: int = 0):
    """The sampler's batches through `pipeline` ("auto", "tf.data" or "pydataset"): the same batches
    either way, `first_batch` of them skipped and each mapped by `to_targets`."""
    if resolve_input_pipeline(pipeline) == "pydataset":
        return PatchBatches(sampler, batch_size, num_patches, first_batch, to_targets, cache, workers)
    ds = patch_dataset(sampler, batch_size, num_patches=num_patches, num_parallel_calls=workers or None, cache=cache)
    ds = ds.skip(first_batch) if first_batch else ds
    return ds.map(to_targets) if to_targets else ds


__all__ = ["PatchBatches", "patch_stream", "resolve_input_pipeline"]
