"""Polyak averaging of the weights (`[training] ema_momentum`): validation scores, and the checkpoints
hold, the exponential moving average of the trained weights instead of the last step's.

The optimizer keeps the average itself (Keras's `use_ema`), inside the compiled step on every backend.
`AveragedWeights` puts it into the model while validation runs and while the epoch's logs and
checkpoints are made, and puts the trained weights back before the backup and the next step: training
follows exactly the path it would without averaging, and a backup (weights and optimizer state) resumes
both. Without `[training] ema_momentum` none of this is built.
"""

from __future__ import annotations

import keras
from keras import ops


def _averaging_optimizer(model):
    optimizer = model.optimizer
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # inside a LossScaleOptimizer
    if not getattr(optimizer, "use_ema", False):
        raise ValueError("averaged weights need an optimizer built with use_ema=True "
                         "([training] ema_momentum > 0)")
    return optimizer


class AveragedWeights:
    """Which weights the model holds, the trained ones or their average, and the two callbacks that
    switch between them around what should see the average (`scaffold.run_callbacks` places them)."""

    def __init__(self):
        self.average_in_model = False
        self.before_logs = _UseAverage(self)  # validation, the epoch's metric callbacks and checkpoints
        self.after_checkpoints = _UseTrained(self)  # before the backup and the next epoch

    def _swap(self, model) -> None:
        """Exchange the model's trainable weights with the optimizer's averages (Keras's
        SwapEMAWeights does the same; its own order is fixed to evaluation or the whole epoch end)."""
        optimizer = _averaging_optimizer(model)
        for variable, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
            trained = ops.convert_to_numpy(variable)
            variable.assign(average)
            average.assign(trained)

    def use_average(self, model) -> None:
        if not self.average_in_model:
            self._swap(model)
            self.average_in_model = True

    def use_trained(self, model) -> None:
        if self.average_in_model:
            self._swap(model)
            self.average_in_model = False


class _UseAverage(keras.callbacks.Callback):
    def __init__(self, weights: AveragedWeights):
        super().__init__()
        self.weights = weights

    def on_test_begin(self, logs=None):
        self.weights.use_average(self.model)

    def on_test_end(self, logs=None):
        self.weights.use_trained(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.weights.use_average(self.model)


class _UseTrained(keras.callbacks.Callback):
    def __init__(self, weights: AveragedWeights):
        super().__init__()
        self.weights = weights

    def on_epoch_end(self, epoch, logs=None):
        self.weights.use_trained(self.model)


__all__ = ["AveragedWeights"]
