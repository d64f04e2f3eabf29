import keras
import numpy as np

from kerasbrain.training.callbacks import ValidationHD95


def _passthrough_model():
    inputs = keras.Input((None, None, None, 3))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def test_validation_hd95_known_answer():
    y = np.zeros((1, 8, 8, 12, 3), np.float32)
    y[0, 3, 3, 2, :] = 1
    x = np.roll(y, 3, axis=3)  # the "prediction" sits 3 voxels away in every region
    callback = ValidationHD95([(x, y)])
    callback.set_model(_passthrough_model())
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == {"val_hd95_WT": 3.0, "val_hd95_TC": 3.0, "val_hd95_ET": 3.0}
    callback = ValidationHD95([(y, y)])
    callback.set_model(_passthrough_model())
    callback.on_epoch_end(0, logs)
    assert logs["val_hd95_ET"] == 0.0
