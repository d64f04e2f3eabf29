"""Training on several devices or machines through the engines that exist, not our own.

The `[distribution]` section of a run's config (or `kerasbrain train ... --distribution`) picks:

- ``none``: one device (the default).
- ``data_parallel``: every device of this machine (or the first `devices`), each taking a slice
  of the global batch: `keras.distribution.DataParallel` on JAX, `tf.distribute.MirroredStrategy`
  on TensorFlow.
- ``multi_worker``: several machines, each running the same command: on JAX
  `jax.distributed.initialize()` (its coordinator from `KERASBRAIN_COORDINATOR`,
  `KERASBRAIN_NUM_PROCESSES` and `KERASBRAIN_PROCESS_ID`, or a cluster JAX detects itself: SLURM,
  Open MPI, Cloud TPU) then `DataParallel` over every process's devices, each process feeding its
  share of the global batch from its own patch stream. On TensorFlow it is refused with a clear
  error: Keras 3.15's trainer fails under `MultiWorkerMirroredStrategy` (see `MULTI_WORKER_ON_TF`).

`[training] batch_size` stays the global batch, so a run gives the same updates on one device or
several (tests/training/test_distribution.py compares the loss curves); it must divide evenly.
Only the chief worker writes the run folder; the others write to `<run>/.worker-<i>/`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from kerasbrain.config import check

STRATEGIES = ("none", "data_parallel", "multi_worker")

#: Tried with two workers on loopback (TF 2.21, Keras 3.15.1): Keras's TensorFlow trainer fails
#: under MultiWorkerMirroredStrategy before the first step (its symbolic build reduces a
#: PerReplica input batch across workers: "Attempt to convert a value (PerReplica...)") and, with
#: that step skipped, in `reduce_per_replica` ("Invalid reduction dimension 0 for input with 0
#: dimensions"). Upstream, still open: keras-team/keras#20585 (Keras 3 and MultiWorkerMirroredStrategy),
#: tensorflow/tensorflow#72388. JAX's multi-process DataParallel trains correctly
#: (tests/training/test_distribution.py).
MULTI_WORKER_ON_TF = ("[distribution] strategy = \"multi_worker\" needs the JAX backend (KERAS_BACKEND=jax): "
                      "Keras 3's TensorFlow trainer fails under MultiWorkerMirroredStrategy; on one machine "
                      "use data_parallel")


@dataclass(frozen=True)
class DistributionConfig:
    strategy: str = "none"  # none, data_parallel (this machine's devices), multi_worker (several machines)
    devices: int = 0  # data_parallel: use the first `devices` devices (0 = all)

    def __post_init__(self):
        check(self.strategy in STRATEGIES, "strategy", ", ".join(STRATEGIES), self.strategy)
        check(self.devices >= 0, "devices", "must be 0 (all) or more", self.devices)


@dataclass
class Distribution:
    """What a trainer needs to know of the strategy in force."""

    replicas: int = 1
    worker: int = 0  # this process's index among the workers; 0 is the chief
    feeders: int = 1  # processes that each feed 1/feeders of the global batch (JAX's multi-process input)

    def data_shard(self) -> tuple[int, int]:
        """(index, count): this process feeds batches of `global / count` items from its own stream."""
        return (self.worker, self.feeders) if self.feeders > 1 else (0, 1)

    @property
    def chief(self) -> bool:
        return self.worker == 0

    def run_dir(self, run_dir) -> Path:
        """Where this worker writes: the run folder for the chief, a private folder for the others."""
        return Path(run_dir) if self.chief else Path(run_dir) / f".worker-{self.worker}"


def _local_devices(backend: str, wanted: int) -> list:
    if backend == "jax":
        from keras.distribution import list_devices

        devices = list_devices()
    else:
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
    if wanted > len(devices):
        raise ValueError(f"[distribution] devices = {wanted}, but this machine has {len(devices)}: {devices}")
    return devices[:wanted] if wanted else devices


def _initialize_jax_processes() -> int:
    """Join the JAX cluster (once per process); returns this process's index."""
    import jax

    env = os.environ
    if "KERASBRAIN_COORDINATOR" in env:
        jax.distributed.initialize(env["KERASBRAIN_COORDINATOR"], int(env["KERASBRAIN_NUM_PROCESSES"]),
                                   int(env["KERASBRAIN_PROCESS_ID"]))
    else:
        jax.distributed.initialize()  # SLURM, Open MPI, Cloud TPU: JAX reads the cluster itself
    return jax.process_index()


def _check_batch(global_batch: int, replicas: int) -> None:
    if global_batch % replicas:
        raise ValueError(f"[training] batch_size = {global_batch} does not split evenly across {replicas} "
                         f"devices; use a multiple of {replicas}")


@contextlib.contextmanager
def distributed(config: DistributionConfig, global_batch: int, progress=print):
    """Put the configured strategy in force for the block (model building, compiling and `fit`)."""
    import keras

    if config.strategy == "none":
        yield Distribution()
        return
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        from keras.distribution import DataParallel, distribution, list_devices, set_distribution

        worker = _initialize_jax_processes() if config.strategy == "multi_worker" else 0
        devices = list_devices() if config.strategy == "multi_worker" else _local_devices(backend, config.devices)
        _check_batch(global_batch, len(devices))
        previous = distribution()
        set_distribution(DataParallel(devices=devices))
        progress(f"data parallel over {len(devices)} devices (keras.distribution, global batch {global_batch})")
        try:
            yield Distribution(len(devices), worker, jax.process_count())
        finally:
            set_distribution(previous)
        return
    if backend != "tensorflow":
        raise ValueError(f"[distribution] supports the jax and tensorflow backends. Received: {backend}")
    import tensorflow as tf

    if config.strategy == "multi_worker":
        raise ValueError(MULTI_WORKER_ON_TF)
    strategy = tf.distribute.MirroredStrategy(_local_devices(backend, config.devices))
    _check_batch(global_batch, strategy.num_replicas_in_sync)
    progress(f"data parallel over {strategy.num_replicas_in_sync} devices ({type(strategy).__name__}, "
             f"global batch {global_batch})")
    with strategy.scope():
        yield Distribution(strategy.num_replicas_in_sync)

