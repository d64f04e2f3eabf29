"""The trainer scaffold's optimizer build: the training step is traced once, and resuming still
restores the optimizer's slots."""

import keras
import numpy as np

from kerasbrain.training.callbacks import AtomicBackup
from kerasbrain.training.scaffold import build_optimizer_state


class CountingModel(keras.Model):
    """A tiny real model that counts how often its training step is traced (run as Python)."""

    traces = 0

    def train_step(self, *args, **kwargs):
        CountingModel.traces += 1
        return super().train_step(*args, **kwargs)


def tiny_model():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inputs))
    model = CountingModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")


def test_the_training_step_is_traced_once_when_the_optimizer_is_built_first():
    x, y = data()
    CountingModel.traces = 0
    unbuilt = tiny_model()
    unbuilt.fit(x, y, batch_size=8, epochs=2, verbose=0)
    traces_unbuilt = CountingModel.traces  # TensorFlow: twice (once to create the slots); JAX: once

    CountingModel.traces = 0
    model = tiny_model()
    build_optimizer_state(model)
    assert model.optimizer.built and len(model.optimizer.variables) > len(model.trainable_variables)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert CountingModel.traces == 1, CountingModel.traces
    assert traces_unbuilt >= CountingModel.traces
    assert history.history["loss"][-1] < history.history["loss"][0]
    build_optimizer_state(model)  # a second call (the next stage of a two-stage run) keeps the state
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8


def test_a_resumed_run_restores_the_optimizer_slots_into_the_built_optimizer(tmp_path):
    x, y = data()
    first = tiny_model()
    build_optimizer_state(first)
    first.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[AtomicBackup(str(tmp_path / "backup"), delete_checkpoint=False)])
    resumed = tiny_model()
    build_optimizer_state(resumed)  # built before the backup is read, as every trainer now does
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["slots"] = [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables]

    resumed.fit(x, y, batch_size=8, epochs=3, verbose=0,
                callbacks=[AtomicBackup(str(tmp_path / "backup"), delete_checkpoint=False), Record()])
    saved = [keras.ops.convert_to_numpy(v) for v in first.optimizer.variables]
    assert len(seen["slots"]) == len(saved)
    for restored, original in zip(seen["slots"], saved):
        np.testing.assert_array_equal(restored, original)
    assert int(keras.ops.convert_to_numpy(first.optimizer.iterations)) == 8
