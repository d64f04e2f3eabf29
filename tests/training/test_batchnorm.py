"""Batch-norm statistics: the cause of 2-D models that train well but predict badly, and its fix."""

import keras
import numpy as np

from kerasbrain.losses import DiceCELoss
from kerasbrain.models.unet import UNet
from kerasbrain.training.batchnorm import BatchNormRecalibration, batch_norm_layers, recalibrate_batch_norm
from kerasbrain.training.scaffold import build_training_state


def separable_phantom(n=24, size=32, seed=0):
    """Bright discs (tumour) on a dim, noisy background: any model separates them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(0.2, 0.05, size=(n, size, size, 3)).astype("float32")
    masks = np.zeros((n, size, size, 1), "float32")
    for i in range(n):
        cy, cx, r = rng.integers(8, size - 8, 2).tolist() + [int(rng.integers(3, 7))]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        images[i][disc] += 0.7
        masks[i, disc, 0] = 1
    return images, masks


def tiny_bn_unet(steps, seed=0, callbacks=(), validation=None):
    keras.utils.set_random_seed(seed)
    images, masks = separable_phantom()
    model = UNet(spatial_dims=2, in_channels=3, out_channels=1, base_filters=4, depth=2, norm="batch",
                 activation="relu")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=DiceCELoss(batch_dice=True))
    build_training_state(model)  # as the trainers do: TensorFlow then traces the step once, not twice
    model.fit(images, masks, batch_size=8, epochs=steps // 3, verbose=0, callbacks=list(callbacks),
              validation_data=validation, shuffle=False)
    return model, images, masks


def modes(model, images):
    train = keras.ops.convert_to_numpy(model(images, training=True))
    infer = keras.ops.convert_to_numpy(model(images, training=False))
    return train, infer


def test_after_a_short_run_moving_statistics_are_the_cause():
    """Training-mode predictions (batch statistics) are good; inference-mode ones (moving averages) are not."""
    model, images, masks = tiny_bn_unet(steps=9)
    train, infer = modes(model, images)
    train_agreement = ((train > 0.5) == (masks > 0.5)).mean()
    assert train_agreement > 0.9
    assert np.abs(train - infer).mean() > 0.1  # Keras' momentum 0.99: averages still near their start


def test_recalibration_on_one_batch_makes_inference_equal_training_mode():
    """Known answer: with one batch the recalibrated averages are that batch's statistics exactly."""
    model, images, _ = tiny_bn_unet(steps=9)
    batch = images[:8]
    assert recalibrate_batch_norm(model, [batch]) == 1
    train, infer = modes(model, batch)
    np.testing.assert_allclose(infer, train, atol=2e-4)
    assert all(layer.momentum == 0.99 for layer in batch_norm_layers(model))  # restored


def test_recalibration_averages_several_batches():
    model, images, masks = tiny_bn_unet(steps=9)
    batches = [images[i:i + 8] for i in range(0, 24, 8)]  # several different batches
    assert recalibrate_batch_norm(model, batches, max_batches=2) == 2
    assert recalibrate_batch_norm(model, batches) == 3
    train, infer = modes(model, images)
    assert ((infer > 0.5) == (train > 0.5)).mean() > 0.99
    assert ((infer > 0.5) == (masks > 0.5)).mean() > 0.9


def test_callback_recalibrates_inside_fit_so_validation_tells_the_truth():
    images, masks = separable_phantom(seed=1)
    batches = [images[i:i + 8] for i in range(0, 24, 8)]
    model, images, masks = tiny_bn_unet(steps=9, callbacks=[BatchNormRecalibration(batches)],
                                        validation=(images, masks))
    train, infer = modes(model, images)
    assert ((infer > 0.5) == (train > 0.5)).mean() > 0.99


def test_frozen_layers_keep_their_statistics():
    model, images, _ = tiny_bn_unet(steps=3)
    frozen = batch_norm_layers(model)[0]
    frozen.trainable = False
    before = keras.ops.convert_to_numpy(frozen.moving_mean).copy()
    recalibrate_batch_norm(model, [images[:8]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(frozen.moving_mean), before)
    assert frozen not in batch_norm_layers(model)
