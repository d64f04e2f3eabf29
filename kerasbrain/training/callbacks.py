"""Callbacks that keep a run folder consistent when a run is killed at any moment."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import keras

from kerasbrain.data.labels import REGIONS
from kerasbrain.files import atomic_write


def completed_epochs(backup_dir) -> int:
    """Epochs a run has completed according to Keras BackupAndRestore's metadata (0 for a new run)."""
    meta = Path(backup_dir) / "training_metadata.json"
    if meta.exists():
        try:
            return int(json.loads(meta.read_text()).get("epoch", 0))
        except (ValueError, OSError):
            return 0
    return 0


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore made safe against `kill -9`: a resumed run never reads a half-written
    or mismatched backup.

    Each save writes `epoch-NNNNN.weights.h5` under a temporary name and renames it, then writes
    `training_metadata.json` (naming that file) the same way, then deletes older weights. Killed at
    any moment, the metadata names a complete weights file of the epoch it records.
    """

    WEIGHTS = "epoch-{:05d}.weights.h5"

    def _metadata(self) -> dict:
        try:
            return json.loads(Path(self._training_metadata_path).read_text())
        except (OSError, ValueError):
            return {}

    def _load_model(self):
        named = self._metadata().get("weights")
        if named:
            self._weights_path = str(Path(self.backup_dir) / named)
        return super()._load_model()

    def _save_model(self):
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = self.WEIGHTS.format(self._current_epoch)
        atomic_write(folder / name, lambda tmp: self.model.save_weights(tmp, overwrite=True))
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}
        atomic_write(self._training_metadata_path, lambda tmp: Path(tmp).write_text(json.dumps(metadata)))
        for old in list(folder.glob("epoch-*.weights.h5")) + [folder / "latest.weights.h5"]:
            if old.name != name and old.exists():
                old.unlink()


def trim_history(path, epochs: int) -> None:
    """Keep the rows of a CSVLogger file for epochs below `epochs` (rewritten atomically).

    A run killed after logging an epoch but before backing it up repeats that epoch on resume;
    trimming first means the history never has a gap or a repeated epoch.
    """
    import csv

    path = Path(path)
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < epochs]
    if len(kept) != len(rows):
        def write(tmp):
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(kept)

        atomic_write(path, write)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model as `.keras` at each epoch end (or only on improvement), written aside then renamed.

    `saved_model` saves another model built on the trained one's layers: the network inside a training
    wrapper (`training/device_augment.py`), or seed 003's label channels answering in regions
    (`models/label_channels.py`).

    With `monitor`, the best value so far is kept in `<path>.json` beside the model, so a resumed
    run only replaces the best model with a better one.

    `copy_of` is another checkpoint of the same model earlier in the callback list (last.keras
    beside best.keras): in an epoch where it saved, its file is copied instead of serialising the
    model a second time (seed 004's ResNet50 U-Net: 1.35 s to save, 0.35 s to copy on a 2-core CPU,
    `bench/checkpoint_save.py`).
    """

    def __init__(self, path, monitor: str | None = None, mode: str = "min", saved_model: keras.Model | None = None,
                 copy_of: AtomicCheckpoint | None = None):
        super().__init__()
        self.path = Path(path)
        self.saved_model = saved_model  # what to save, where it is not the trained model itself
        self.monitor = monitor
        self.mode = mode
        self.record = self.path.with_suffix(".json")
        self.copy_of = copy_of
        self.saved_epoch = None  # the epoch whose model this file holds, once saved in this run

    def _best(self) -> float:
        if self.record.exists():
            return float(json.loads(self.record.read_text())["value"])
        return math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor is not None:
            value = logs.get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            value = float(value)
            better = value < self._best() if self.mode == "min" else value > self._best()
            if not better:
                return
        if self.copy_of is not None and self.copy_of.saved_epoch == epoch:
            atomic_write(self.path, lambda tmp: shutil.copyfile(self.copy_of.path, tmp))
        else:
            saved = self.saved_model if self.saved_model is not None else self.model
            atomic_write(self.path, lambda tmp: saved.save(tmp))
        self.saved_epoch = epoch
        if self.monitor is not None:
            info = {"monitor": self.monitor, "value": value, "epoch": epoch + 1}
            atomic_write(self.record, lambda tmp: Path(tmp).write_text(json.dumps(info)))


def monotonic_seconds() -> float:
    """The clock the time budget and its schedule read (one place, so a test can drive it)."""
    return time.monotonic()


class TimeBudget(keras.callbacks.Callback):
    """Stop training once `minutes` of wall-clock time have passed since the first `fit` it joined.

    Checked after every batch; the epoch in progress then ends early and still runs its
    validation and checkpoints, so a budgeted run ends cleanly with best/last models. One instance
    shared by several `fit` calls (training stages) counts their time together; `exhausted` says
    whether the budget ran out.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60
        self.start = None
        self.exhausted = False

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = monotonic_seconds()

    def on_train_batch_end(self, batch, logs=None):
        if monotonic_seconds() - self.start >= self.seconds:
            self.exhausted = True
            self.model.stop_training = True


#: the learning-rate shapes `ScheduledLearningRate` follows, from the share of the run already spent
SCHEDULE_SHAPES = ("cosine", "anneal")


class ScheduledLearningRate(keras.callbacks.Callback):
    """The learning rate as a function of the share of the run spent: of a wall-clock budget
    (`minutes`) or of the configured `epochs`.

    With `--time-budget` the number of steps that fit is not known in advance, and a schedule over
    the configured epochs would barely start decaying before the budget ends. This one sets the
    optimizer's rate at the start of every epoch from the share already spent, so it reaches
    `alpha * initial` as the run ends, however fast the machine is. Shapes:

    - "cosine": cosine decay over the whole run (nnU-Net's long runs decay from the start).
    - "anneal": the initial rate until the last `anneal_fraction` of the run, then a linear fall
      (the stable-then-decay ending of warmup-stable-decay schedules). A constant-rate run ends
      at its noisiest weights; a short anneal at the end settles them without slowing the early,
      fast learning that a short budget lives on.

    The rate is a plain value between epochs (the way Keras's ReduceLROnPlateau changes it), which
    works on every backend.
    """

    def __init__(self, initial: float, shape: str = "cosine", minutes: float | None = None,
                 epochs: int | None = None, alpha: float = 0.01, anneal_fraction: float = 0.2, clock=None):
        super().__init__()
        if shape not in SCHEDULE_SHAPES:
            raise ValueError(f"shape must be one of {SCHEDULE_SHAPES}. Received: shape={shape!r}")
        if (minutes is None) == (epochs is None):
            raise ValueError("give the run's length as minutes (a time budget) or epochs, not both")
        self.initial, self.shape, self.alpha = float(initial), shape, float(alpha)
        self.anneal_fraction = float(anneal_fraction)
        self.seconds = minutes * 60 if minutes is not None else None
        self.epochs = epochs
        self.clock = clock or (lambda: monotonic_seconds())
        self.start = None

    def rate(self, fraction: float) -> float:
        """The rate after `fraction` of the run (clipped to [0, 1])."""
        fraction = min(max(fraction, 0.0), 1.0)
        if self.shape == "cosine":
            left = 0.5 * (1 + math.cos(math.pi * fraction))
        else:
            left = min(1.0, (1.0 - fraction) / self.anneal_fraction) if self.anneal_fraction > 0 else 1.0
        return self.initial * (self.alpha + (1 - self.alpha) * left)

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        spent = (self.clock() - self.start) / self.seconds if self.seconds else epoch / self.epochs
        self.model.optimizer.learning_rate = self.rate(spent)


class ValidationHD95(keras.callbacks.Callback):
    """Adds `val_hd95_<region>` to the epoch logs: the 95% Hausdorff distance on validation patches.

    Distances are in mm when `spacing` (the patches' voxel size) is given, else in voxels, which
    are 1 mm for MSD and BraTS at their native spacing. A distance transform has no keras.ops form, so HD95 cannot be a streaming Keras metric; this
    callback computes it with the evaluation's numpy function (`kerasbrain.metrics.hd95`, BraTS
    conventions for empty masks) on the validation patches at each epoch end. Place it before the
    callbacks that record logs (CSV, TensorBoard, checkpoints) so they see it.
    """

    def __init__(self, validation_data, regions=REGIONS, threshold: float = 0.5, spacing=None):
        super().__init__()
        self.validation_data = validation_data
        self.spacing = tuple(spacing) if spacing else None
        self.regions = regions
        self.threshold = threshold

    def _predict(self, x):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if tf.distribute.has_strategy():  # predict_on_batch would give each replica the whole batch
                return self.model(x, training=False)
        return self.model.predict_on_batch(x)

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np

        from kerasbrain.metrics.numpy_metrics import hd95

        if logs is None:
            return
        values = {r: [] for r in self.regions}
        data = self.validation_data
        batches = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data  # tf.data -> numpy
        for x, y in batches:
            y = y[0] if isinstance(y, (tuple, list)) else y
            pred = self._predict(x)
            pred = pred[0] if isinstance(pred, (tuple, list)) else pred
            pred, y = keras.ops.convert_to_numpy(pred) >= self.threshold, np.asarray(y) >= 0.5
            for i in range(len(pred)):
                for c, region in enumerate(self.regions):
                    values[region].append(hd95(pred[i, ..., c], y[i, ..., c], self.spacing))
        for region, v in values.items():
            logs[f"val_hd95_{region}"] = float(np.mean(v)) if v else float("nan")
