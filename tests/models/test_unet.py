
import keras
import numpy as np
import pytest

from kerasbrain.models.unet import UNet
from tests.conftest import once


@pytest.mark.parametrize("dims,shape", [(3, (16, 24, 32)), (2, (32, 48))])
def test_output_shapes(dims, shape):
    model = UNet(spatial_dims=dims, in_channels=4, out_channels=3, base_filters=4, depth=2)
    x = np.random.default_rng(0).normal(size=(2,) + shape + (4,)).astype("float32")
    y = model.predict_on_batch(x)
    assert y.shape == (2,) + shape + (3,)
    assert ((y >= 0) & (y <= 1)).all()


@once
def test_default_size_matches_the_benchmarked_network():
    # 5.65 M parameters: the network size our speed targets are stated for
    assert UNet().count_params() == 5_647_715


@pytest.mark.parametrize("network", ["unet", "resenc"])
def test_strides_per_axis_leave_thick_slices_unpooled(network):
    from kerasbrain.models.resenc_unet import ResEncUNet
    from kerasbrain.windows import axis_divisors, check_window

    cls = UNet if network == "unet" else ResEncUNet
    model = cls(base_filters=4, depth=3, deep_supervision=2, strides=[[2, 2, 1], [2, 2, 1], [2, 2, 2]])
    assert model.axis_divisors == axis_divisors(model) == (8, 8, 2) and model.size_divisor == 8
    x = np.random.default_rng(3).normal(size=(2, 16, 24, 6, 4)).astype("float32")  # z: 6, a multiple of 2 only
    outs = model.predict_on_batch(x)
    assert [o.shape[1:4] for o in outs] == [(16, 24, 6), (8, 12, 6), (4, 6, 6)]  # z pooled at the third level
    assert check_window((16, 24, 6), model.axis_divisors) == (16, 24, 6)
    with pytest.raises(ValueError, match=r"multiples of \(8, 8, 2\)"):
        check_window((16, 24, 5), model.axis_divisors)
    twin = cls.from_config(model.get_config())
    assert twin.get_config()["strides"] == [[2, 2, 1], [2, 2, 1], [2, 2, 2]]
    assert cls(base_filters=4, depth=2, strides=[[2, 2, 2]] * 2).get_config()["strides"] is None  # the default
    with pytest.raises(ValueError, match="strides must be 3 entries"):
        cls(base_filters=4, depth=3, strides=[[2, 2, 1]])
    with pytest.raises(ValueError, match="at least one 2"):
        cls(base_filters=4, depth=1, strides=[[1, 1, 1]])


@pytest.mark.parametrize("network", ["unet", "resenc"])
def test_kernels_one_voxel_wide_along_z_keep_the_slices_apart(network):
    """Known answer: with (3, 3, 1) kernels and in-plane pooling only, and no normalisation across the
    volume, each output slice depends on its own input slice alone."""
    from kerasbrain.models.resenc_unet import ResEncUNet

    cls = UNet if network == "unet" else ResEncUNet
    model = cls(base_filters=4, depth=2, norm="none", strides=[[2, 2, 1]] * 2, kernel_sizes=[[3, 3, 1]] * 3)
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 5, 4)).astype("float32")
    changed = x.copy()
    changed[:, :, :, 0] += 5.0  # only slice 0 differs
    a, b = model.predict_on_batch(x), model.predict_on_batch(changed)
    assert not np.allclose(a[:, :, :, 0], b[:, :, :, 0])
    np.testing.assert_allclose(a[:, :, :, 1:], b[:, :, :, 1:], atol=1e-6)
    assert cls.from_config(model.get_config()).get_config()["kernel_sizes"] == [[3, 3, 1]] * 3
    with pytest.raises(ValueError, match="kernel_sizes must be 3 entries"):
        cls(base_filters=4, depth=2, kernel_sizes=[[3, 3, 1]])


def test_deep_supervision_outputs_halve():
    model = UNet(base_filters=4, depth=3, deep_supervision=2)
    outs = model.predict_on_batch(np.zeros((1, 16, 16, 16, 4), "float32"))
    assert [o.shape[1:4] for o in outs] == [(16, 16, 16), (8, 8, 8), (4, 4, 4)]


def test_each_norm_adds_its_parameters_and_drops_the_conv_biases():
    """Depth 1, 8 filters: 64 normalised conv channels (encoder 2 x 8, bottom 2 x 16, decoder 2 x 8).

    Instance and group norm add a scale and an offset per channel and make the conv bias redundant
    (+64); batch norm adds a moving mean and variance too (+192, of which 128 not trained).
    """
    counts = {norm: UNet(base_filters=8, depth=1, norm=norm) for norm in ("instance", "group", "batch", "none")}
    none = counts["none"].count_params()
    assert counts["instance"].count_params() == counts["group"].count_params() == none + 64
    assert counts["batch"].count_params() == none + 192
    trainable = {n: sum(int(np.prod(w.shape)) for w in m.trainable_weights) for n, m in counts.items()}
    assert trainable["batch"] == trainable["instance"] == none + 64


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3. Received: spatial_dims=4"):
        UNet(spatial_dims=4)
    with pytest.raises(ValueError, match="norm must be one of"):
        UNet(norm="layer")


def test_config_round_trip():
    model = UNet(base_filters=4, depth=2, norm="group", deep_supervision=1)
    clone = UNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


def test_one_fit_step_reduces_loss():
    from kerasbrain.losses import DiceCELoss

    keras.utils.set_random_seed(0)
    model = UNet(base_filters=4, depth=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=DiceCELoss())
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 8, 4)).astype("float32")
    y = (x[..., :3] > 0).astype("float32")
    history = model.fit(x, y, epochs=5, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_output_prior_starts_every_output_at_that_probability():
    # RetinaNet's prior initialisation: the logits' bias is log(p / (1 - p)), here for the main and the
    # auxiliary (deep supervision) heads, so an untrained network predicts mostly background
    model = UNet(spatial_dims=2, in_channels=3, out_channels=2, base_filters=4, depth=2, deep_supervision=1,
                 output_prior=0.01)
    for name in ("logits", "aux1_logits"):
        np.testing.assert_allclose(np.asarray(model.get_layer(name).bias), [np.log(0.01 / 0.99)] * 2, rtol=1e-6)
    full, _ = model.predict_on_batch(np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32"))
    assert 0.001 < np.median(full) < 0.1  # the median pixel sits near the prior (0.5 without it)
    assert np.asarray(UNet(spatial_dims=2, base_filters=4, depth=2).get_layer("logits").bias).tolist() == [0, 0, 0]
    assert UNet.from_config(model.get_config()).output_prior == 0.01
    with pytest.raises(ValueError, match="output_prior needs sigmoid outputs"):
        UNet(spatial_dims=2, base_filters=4, depth=2, final_activation="softmax", output_prior=0.01)
    with pytest.raises(ValueError, match="output_prior must be a probability"):
        UNet(spatial_dims=2, base_filters=4, depth=2, output_prior=1.5)
