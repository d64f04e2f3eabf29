"""Compile mode, precision and blending choices of kerasbrain.runtime on this (GPU-less) machine."""

import keras
import numpy as np
import pytest

from kerasbrain import runtime
from kerasbrain.losses import DiceCELoss
from kerasbrain.models.unet import UNet
from kerasbrain.runtime import precision_policy, predictor, resolve_jit_compile, resolve_precision


def test_precision_modes():
    assert resolve_precision("fp32") == "float32"
    assert resolve_precision("bf16") == "mixed_bfloat16"
    assert resolve_precision("auto") == "float32"  # no GPU here: prediction stays fp32 on any CPU
    assert resolve_precision("fp32", training=True) == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
                       "bogomips\t: 4800\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert runtime.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags, onednn, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, "1", "mixed_bfloat16"),
    ({"avx2", "amx_bf16", "amx_tile"}, "1", "mixed_bfloat16"),
    ({"avx2", "avx512f", "avx512_vnni"}, "1", "float32"),  # no native bfloat16: stays as it was
    ({"avx512_bf16"}, "0", "float32"),  # without oneDNN TensorFlow's plain kernels do not use it
])
def test_auto_trains_in_bf16_only_on_a_cpu_that_computes_it_natively(monkeypatch, flags, onednn, expected):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    on_tensorflow = keras.backend.backend() == "tensorflow"
    assert resolve_precision("auto", training=True) == (expected if on_tensorflow else "float32")  # XLA: fp32
    assert resolve_precision("auto") == "float32"  # prediction: fp32 on every CPU
    with precision_policy("auto", training=True):
        model = UNet(base_filters=4, depth=1)
    assert model.get_layer("encoder0_conv0").dtype_policy.name == (expected if on_tensorflow else "float32")


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
