"""The trainer scaffold's state build: the training step is traced once (a two-output model: the
compiled losses' trackers as well as the optimizer's slots), and resuming still restores the slots;
`fit_verbosity`: Keras's live bar on a terminal only."""

import io

import keras
import numpy as np

from kerasbrain.training.callbacks import AtomicBackup
from kerasbrain.training.scaffold import build_training_state, fit_verbosity


class CountingModel(keras.Model):
    """A tiny real model that counts how often its training step is traced (run as Python)."""

    traces = 0

    def train_step(self, *args, **kwargs):
        CountingModel.traces += 1
        return super().train_step(*args, **kwargs)


def tiny_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = CountingModel(inputs, [keras.layers.Dense(2)(hidden), keras.layers.Dense(1)(hidden)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=["mse", "mae"], metrics=[["mae"], []])
    return model


def data():
    """A tf.data stream of 4 different batches of 8, as the trainers feed `fit`."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (rng.normal(size=(32, 2)).astype("float32"), rng.normal(size=(32, 1)).astype("float32"))
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_the_training_step_is_traced_once_when_the_optimizer_is_built_first():
    CountingModel.traces = 0
    unbuilt = tiny_model()
    unbuilt.fit(data(), epochs=2, verbose=0, shuffle=False)
    traces_unbuilt = CountingModel.traces  # TensorFlow: twice (once to create the state); JAX: once

    CountingModel.traces = 0
    model = tiny_model()
    build_training_state(model, data())
    assert model.optimizer.built and len(model.optimizer.variables) > len(model.trainable_variables)
    assert len(model.metrics_variables) >= 8  # the loss, two output losses and a metric: a total and a count each
    history = model.fit(data(), epochs=2, verbose=0, shuffle=False)
    assert CountingModel.traces == 1, CountingModel.traces
    assert traces_unbuilt >= CountingModel.traces
    assert history.history["loss"][-1] < history.history["loss"][0]
    build_training_state(model, data())  # a second call keeps the state
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8


def test_a_resumed_run_restores_the_optimizer_slots_into_the_built_optimizer(tmp_path):
    first = tiny_model()
    build_training_state(first, data())
    first.fit(data(), epochs=2, verbose=0, shuffle=False,
              callbacks=[AtomicBackup(str(tmp_path / "backup"), delete_checkpoint=False)])
    resumed = tiny_model()
    build_training_state(resumed, data())  # built before the backup is read, as every trainer now does
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["slots"] = [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables]

    resumed.fit(data(), epochs=3, verbose=0, shuffle=False,
                callbacks=[AtomicBackup(str(tmp_path / "backup"), delete_checkpoint=False), Record()])
    saved = [keras.ops.convert_to_numpy(v) for v in first.optimizer.variables]
    assert len(seen["slots"]) == len(saved)
    for restored, original in zip(seen["slots"], saved):
        np.testing.assert_array_equal(restored, original)
    assert int(keras.ops.convert_to_numpy(first.optimizer.iterations)) == 8


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_fit_prints_one_line_per_epoch_unless_stdout_is_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert fit_verbosity() == 2 and fit_verbosity("auto") == 2
    assert fit_verbosity(0) == 0 and fit_verbosity(1) == 1  # a caller's explicit choice stands
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert fit_verbosity() == 1 and fit_verbosity(2) == 2
