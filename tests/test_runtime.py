"""Compile mode, precision and blending choices of kerasbrain.runtime on this (GPU-less) machine."""

import keras
import numpy as np
import pytest

from kerasbrain.losses import DiceCELoss
from kerasbrain.models.unet import UNet
from kerasbrain.runtime import precision_policy, predictor, resolve_jit_compile, resolve_precision


def test_precision_modes():
    assert resolve_precision("fp32") == "float32"
    assert resolve_precision("bf16") == "mixed_bfloat16"
    assert resolve_precision("auto") == "float32"  # no GPU here
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")


def test_bf16_model_keeps_float32_weights_outputs_and_loss():
    before = keras.config.dtype_policy().name
    with precision_policy("bf16"):
        model = UNet(base_filters=4, depth=1)
    assert keras.config.dtype_policy().name == before  # restored
    conv = model.get_layer("encoder0_conv0")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 8, 4)).astype("float32")
    y = (x[..., :3] > 0).astype("float32")
    assert keras.ops.convert_to_numpy(model(x)).dtype == np.float32
    model.compile(optimizer="adam", loss=DiceCELoss())
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)


def test_compile_mode_and_blending_on_a_cpu():
    model = UNet(base_filters=4, depth=1)
    jit = resolve_jit_compile("auto")
    assert jit == (keras.backend.backend() == "jax")  # XLA on JAX, plain graph on TF's CPU
    local = predictor(model, "auto")
    auto = local.volume_predictor((8, 8, 8), 0.5, 2, False, "auto")
    assert (auto is not None) == jit
    assert local.volume_predictor((8, 8, 8), 0.5, 2, False, "host") is None
    assert local.volume_predictor((8, 8, 8), 0.5, 2, False, "device") is not None
    with pytest.raises(ValueError, match="blend must be one of"):
        local.volume_predictor((8, 8, 8), 0.5, 2, False, "gpu")
