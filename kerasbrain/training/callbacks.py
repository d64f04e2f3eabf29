"""Callbacks that keep a run folder consistent when a run is killed at any moment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras

from kerasbrain.files import atomic_write


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model as `.keras` at each epoch end (or only on improvement), written aside then renamed.

    With `monitor`, the best value so far is kept in `<path>.json` beside the model, so a resumed
    run only replaces the best model with a better one.
    """

    def __init__(self, path, monitor: str | None = None, mode: str = "min"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.record = self.path.with_suffix(".json")

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
        atomic_write(self.path, lambda tmp: self.model.save(tmp))
        if self.monitor is not None:
            info = {"monitor": self.monitor, "value": value, "epoch": epoch + 1}
            atomic_write(self.record, lambda tmp: Path(tmp).write_text(json.dumps(info)))
