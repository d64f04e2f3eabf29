import keras
import numpy as np
import pytest

from kerasbrain.models.encoder_unet import EncoderUNet
from kerasbrain.models.unet import UNet
from kerasbrain.models.upsampling import PixelShuffleUpsampling, with_upsampling

TRANSPOSE = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}


@pytest.mark.parametrize("dims,size", [(2, (3, 5)), (3, (3, 5, 4))])
def test_equals_the_transposed_convolution_with_the_same_weights(dims, size):
    rng = np.random.default_rng(dims)
    x = rng.normal(size=(3,) + size + (6,)).astype("float32")  # several different items
    reference = TRANSPOSE[dims](7, 2, strides=2, padding="same", bias_initializer="random_normal")
    expected = keras.ops.convert_to_numpy(reference(x))
    layer = PixelShuffleUpsampling(7, dims)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())  # same layout, no reshaping
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == (3,) + tuple(2 * s for s in size) + (7,)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # the rearrangement path, whichever path this backend and device call by default
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.pixel_shuffle(x)), expected, atol=1e-5)


def test_a_factor_per_axis_equals_the_transposed_convolution_with_those_strides():
    """Thick slices: (2, 2, 1) upsamples in plane only, as a transposed convolution of kernel and stride (2, 2, 1)."""
    x = np.random.default_rng(5).normal(size=(3, 3, 5, 4, 6)).astype("float32")
    reference = keras.layers.Conv3DTranspose(7, (2, 2, 1), strides=(2, 2, 1), padding="same",
                                             bias_initializer="random_normal")
    expected = keras.ops.convert_to_numpy(reference(x))
    layer = PixelShuffleUpsampling(7, 3, factor=(2, 2, 1))
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    assert expected.shape == (3, 6, 10, 4, 7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.pixel_shuffle(x)), expected, atol=1e-5)
    assert PixelShuffleUpsampling.from_config(layer.get_config()).factor == (2, 2, 1)
    with pytest.raises(ValueError, match="factor must be 1 or 2 per spatial axis"):
        PixelShuffleUpsampling(7, 3, factor=(2, 3, 1))


def test_each_input_voxel_fills_its_own_output_block():
    """Known answer: one non-zero input voxel lights exactly its 2x2x2 block with the kernel's values."""
    layer = PixelShuffleUpsampling(1, 3, use_bias=False)
    layer.build((1, 2, 2, 2, 1))
    kernel = np.arange(1, 9, dtype="float32").reshape(2, 2, 2, 1, 1)
    layer.set_weights([kernel])
    x = np.zeros((1, 2, 2, 2, 1), "float32")
    x[0, 1, 0, 1, 0] = 2.0
    for y in (layer(x), layer.pixel_shuffle(x)):
        y = keras.ops.convert_to_numpy(y)[0, ..., 0]
        np.testing.assert_array_equal(y[2:4, 0:2, 2:4], 2 * kernel[..., 0, 0])
        assert np.count_nonzero(y) == 8


def test_unets_use_it_by_default_with_unchanged_size():
    model = UNet()
    assert model.upsample == "pixel_shuffle"
    assert sum(isinstance(layer, PixelShuffleUpsampling) for layer in model.layers) == 4
    assert model.count_params() == UNet(upsample="transpose").count_params() == 5_647_715


def test_models_saved_before_the_change_predict_the_same_with_the_fast_layer():
    """(The fresh-process load of such a file is in test_round_trip.py.)"""
    keras.utils.set_random_seed(5)
    old = UNet(base_filters=4, depth=2, upsample="transpose")
    x = np.random.default_rng(2).normal(size=(2, 8, 12, 16, 4)).astype("float32")
    fast = with_upsampling(old)
    assert fast.upsample == "pixel_shuffle"
    np.testing.assert_allclose(fast.predict_on_batch(x), old.predict_on_batch(x), atol=1e-5)


def test_encoder_unet_converts_too():
    keras.utils.set_random_seed(6)
    old = EncoderUNet("resnet18", decoder_filters=(16, 8, 8, 4, 4), upsample="transpose")
    x = np.random.default_rng(3).uniform(size=(2, 64, 64, 3)).astype("float32")
    fast = with_upsampling(old)
    assert fast is not old and fast.upsample == "pixel_shuffle"
    np.testing.assert_allclose(fast.predict_on_batch(x), old.predict_on_batch(x), atol=1e-5)
    assert with_upsampling(fast) is fast
