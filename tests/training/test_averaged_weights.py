"""[training] ema_momentum: validation and the checkpoints see the moving average of the weights,
training and the backup the trained weights; checked against the average computed by hand from every
step's weights, across a resume."""

import keras
import numpy as np
import pytest

from kerasbrain.config import ConfigError
from kerasbrain.training import train_unet3d as trainer
from kerasbrain.training.config import config_from_dict

MOMENTUM = 0.6
TINY = {
    "model": {"base_filters": 4, "depth": 2},
    "training": {"patch_size": [16, 16, 16], "batch_size": 2, "validation_patches": 2, "steps_per_epoch": 3,
                 "learning_rate": 1e-2, "optimizer": "adam", "lr_schedule": "constant", "ema_momentum": MOMENTUM},
    "data": {"validation_fraction": 0.34},
}


class Recorder(keras.callbacks.Callback):
    """The weights the model holds after every training step, and while validation runs."""

    def __init__(self):
        super().__init__()
        self.steps, self.validated, self.restored = [], [], None

    def _weights(self):
        return [np.array(w) for w in self.model.optimizer._trainable_variables]

    def on_train_batch_begin(self, batch, logs=None):
        if self.restored is None:
            self.restored = self._weights()  # after BackupAndRestore's on_train_begin

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self._weights())

    def on_test_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.validated.append(self._weights())


PLAIN_CALLBACKS = trainer.run_callbacks


def _train(msd_dir, run, epochs, monkeypatch, **training):
    recorder = Recorder()
    monkeypatch.setattr(trainer, "run_callbacks", lambda *a, **k: PLAIN_CALLBACKS(*a, **k) + [recorder])
    config = config_from_dict({**TINY, "training": {**TINY["training"], **training}})
    trainer.train_unet3d(msd_dir, run, config, epochs=epochs, verbose=0, progress=lambda m: None)
    return recorder


def _average(steps, start=None):
    """Keras's moving average: the first step's weights, then momentum * average + (1 - momentum) * weights."""
    average = start
    for weights in steps:
        average = weights if average is None else [MOMENTUM * a + (1 - MOMENTUM) * w for a, w in zip(average, weights)]
    return average


def _assert_close(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def _saved(path):
    return [np.array(w) for w in keras.saving.load_model(path).trainable_weights]


def test_checkpoints_hold_the_average_and_training_resumes_from_the_trained_weights(msd_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    first = _train(msd_dir, run, 1, monkeypatch)
    assert len(first.steps) == 3
    average = _average(first.steps)
    assert not np.allclose(average[0], first.steps[-1][0])  # the average is not the last step's weights
    _assert_close(first.validated[0], average)  # validation scored the average
    _assert_close(_saved(run / "last.keras"), average)
    _assert_close(_saved(run / "best.keras"), average)

    second = _train(msd_dir, run, 2, monkeypatch)  # resumes from the backup
    _assert_close(second.restored, first.steps[-1])  # training goes on from the trained weights
    resumed = _average(second.steps, start=average)  # and the average from where it was
    _assert_close(second.validated[0], resumed)
    _assert_close(_saved(run / "last.keras"), resumed)


def test_the_network_inside_the_device_augmentation_wrapper_is_averaged(msd_dir, tmp_path, monkeypatch):
    """augment_on = "device" trains a wrapper whose variables are the network's; the checkpoints hold the
    network alone, with the average."""
    run = tmp_path / "device"
    steps = _train(msd_dir, run, 1, monkeypatch, augment_on="device").steps
    _assert_close(_saved(run / "last.keras"), _average(steps))


def test_ema_momentum_is_checked():
    with pytest.raises(ConfigError, match=r"ema_momentum.*must be in \[0, 1\)"):
        config_from_dict({"training": {"ema_momentum": 1.0}})
    assert config_from_dict({}).training.ema_momentum == 0.0  # off unless asked for
