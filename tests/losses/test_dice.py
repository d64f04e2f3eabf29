import math

import keras
import numpy as np
import pytest

from kerasbrain.losses import DiceCELoss, SoftDiceLoss


def _arrays(a, b):
    # one batch item, 4 "voxels", one channel
    return (np.array(a, "float32").reshape(1, 4, 1), np.array(b, "float32").reshape(1, 4, 1))


def test_soft_dice_hand_computed():
    y, p = _arrays([1, 1, 0, 0], [1, 0, 1, 0])
    # 2*|A.B| / (|A|+|B|) = 2*1 / (2+2) = 0.5
    assert float(SoftDiceLoss(smooth=0)(y, p)) == pytest.approx(0.5)
    y, p = _arrays([1, 1, 0, 0], [0.5, 0.5, 0.5, 0])
    # intersection 1, sums 2 + 1.5 -> dice 2/3.5
    assert float(SoftDiceLoss(smooth=0)(y, p)) == pytest.approx(1 - 2 / 3.5)
    # squared denominator (seed 003): 2 + 0.75
    assert float(SoftDiceLoss(smooth=0, squared=True)(y, p)) == pytest.approx(1 - 2 / 2.75)


def test_soft_dice_averages_channels_and_batch():
    y = np.zeros((2, 4, 2), "float32")
    p = np.zeros((2, 4, 2), "float32")
    y[0, :2, 0] = 1
    p[0, :2, 0] = 1  # item 0 channel 0 perfect; channel 1 empty/empty -> 1 with smoothing
    y[1, :, 1] = 1  # item 1 channel 1 missed entirely -> 0; channel 0 empty/empty -> 1
    loss = float(SoftDiceLoss(smooth=1e-5)(y, p))
    assert loss == pytest.approx(1 - (1 + 1 + 1 + 0) / 4, abs=1e-4)
    # batch dice pools the batch: channel 0 perfect (1), channel 1 (0 of 4) -> 0
    assert float(SoftDiceLoss(smooth=1e-5, batch_dice=True)(y, p)) == pytest.approx(0.5, abs=1e-4)


def test_dice_ce_hand_computed():
    y, p = _arrays([1, 0, 1, 0], [0.8, 0.2, 0.6, 0.4])
    dice = 2 * 1.4 / (2 + 2.0)
    bce = -np.mean([math.log(0.8), math.log(0.8), math.log(0.6), math.log(0.6)])
    assert float(DiceCELoss(smooth=0)(y, p)) == pytest.approx((1 - dice) + bce, rel=1e-4)
    assert float(DiceCELoss(smooth=0, dice_weight=0.0, ce_weight=2.0)(y, p)) == pytest.approx(2 * bce, rel=1e-4)


@pytest.mark.parametrize("loss", [SoftDiceLoss(squared=True, batch_dice=True), DiceCELoss(dice_weight=0.5)])
def test_config_round_trip(loss):
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()


def test_gradient_points_towards_the_target():
    import keras.ops as ops

    y, p = _arrays([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5])
    if keras.backend.backend() == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda q: DiceCELoss()(y, q))(p))
    else:
        import tensorflow as tf

        q = tf.Variable(p)
        with tf.GradientTape() as tape:
            value = DiceCELoss()(y, q)
        grad = tape.gradient(value, q).numpy()
    assert ops.all(grad[0, [0, 2], 0] < 0) and ops.all(grad[0, [1, 3], 0] > 0)


def test_per_sample_dice_bce_known_values_and_zero_weight():
    from kerasbrain.losses import PerSampleDiceBCELoss

    loss = PerSampleDiceBCELoss()
    y = np.zeros((2, 2, 2, 1), np.float32)
    y[0] = 1  # sample 0: all tumour; sample 1: none
    p = np.full((2, 2, 2, 1), 0.5, np.float32)
    # sample 0: Dice loss 1 - (2*2 + 1) / (4 + 2 + 1) = 2/7, BCE ln 2; sample 1: 1 - 1/3 and ln 2
    per_sample = np.asarray(loss.call(y, p))
    np.testing.assert_allclose(per_sample, [2 / 7 + np.log(2), 2 / 3 + np.log(2)], rtol=1e-5)
    # a sample weighted 0 (it has no mask) adds nothing; Keras averages over the batch size
    assert float(loss(y, p, sample_weight=np.array([1.0, 0.0]))) == pytest.approx(per_sample[0] / 2, rel=1e-5)
    assert float(loss(y, p, sample_weight=np.array([0.0, 0.0]))) == 0.0
