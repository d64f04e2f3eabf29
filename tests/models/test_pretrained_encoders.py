"""Pretrained encoders from keras-hub: local preset folders in keras-hub's real format, weights files,
ImageNet normalisation inside the model, and the offline failure in one line.

The presets here are keras-hub backbones of the published architectures with seeded random weights,
written by keras-hub's own `save_to_preset`: the files `kerasbrain encoders fetch` writes on a
connected machine, minus the ImageNet numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasbrain.models import presets
from kerasbrain.models.backbones import IMAGENET_MEAN, IMAGENET_STD, hub_backbone
from kerasbrain.models.encoder_unet import EncoderUNet


@pytest.fixture(scope="module")
def resnet18_preset(tmp_path_factory):
    keras.utils.set_random_seed(4)
    folder = tmp_path_factory.mktemp("presets") / "resnet18"
    hub_backbone("resnet18").save_to_preset(str(folder))
    return folder


def _image(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, 64, 96, 3)).astype("float32")


def test_a_local_preset_is_the_encoder_and_the_input_is_imagenet_normalised(resnet18_preset):
    import keras_hub

    model = EncoderUNet.with_pretrained_encoder("resnet18", str(resnet18_preset), decoder_filters=(32, 16, 16, 8, 8))
    reference = keras_hub.models.Backbone.from_preset(str(resnet18_preset))  # keras-hub reads its own folder
    x = _image()
    standardised = (x - np.asarray(IMAGENET_MEAN, "float32")) / np.asarray(IMAGENET_STD, "float32")
    normalised = keras.Model(model.inputs, model.get_layer("imagenet_normalization").output)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalised), standardised, rtol=1e-5, atol=1e-5)
    mine = keras.ops.convert_to_numpy(model.encoder(standardised)[-1])
    theirs = keras.ops.convert_to_numpy(keras.Model(reference.inputs, reference.pyramid_outputs["P5"])(standardised))
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5)
    assert model.get_config()["input_normalization"] == "imagenet"


def test_a_weights_file_gives_the_same_model_as_its_folder(resnet18_preset, tmp_path):
    import keras_hub

    weights = tmp_path / "resnet18.weights.h5"
    keras_hub.models.Backbone.from_preset(str(resnet18_preset)).save_weights(str(weights))
    keras.utils.set_random_seed(1)
    from_folder = EncoderUNet.with_pretrained_encoder("resnet18", str(resnet18_preset))
    keras.utils.set_random_seed(1)
    from_file = EncoderUNet.with_pretrained_encoder("resnet18", str(weights))
    x = _image(seed=3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_folder(x)), keras.ops.convert_to_numpy(from_file(x)),
                               rtol=1e-6, atol=1e-6)


def test_the_wrong_encoder_or_a_broken_folder_is_one_line_naming_it(resnet18_preset, tmp_path):
    with pytest.raises(presets.PresetUnavailable, match=f"{resnet18_preset}: holds a ResNetBackbone that is not "
                                                        "a resnet50 encoder"):
        EncoderUNet.with_pretrained_encoder("resnet50", str(resnet18_preset))
    (tmp_path / "empty").mkdir()
    with pytest.raises(presets.PresetUnavailable, match="not a keras-hub preset folder"):
        presets.pretrained_backbone("resnet18", str(tmp_path / "empty"))
    with pytest.raises(presets.PresetUnavailable, match="no ImageNet preset for 'resnet34'"):
        presets.pretrained_backbone("resnet34", "imagenet")


def test_offline_imagenet_fails_at_once_in_one_line(tmp_path, monkeypatch):
    """No cached preset and no answer from Kaggle: one line that says what to do, within seconds."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: refused at once, as an offline machine refuses
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()
    monkeypatch.setattr(presets, "PRESET_HOST", closed)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty_cache"))
    start = time.monotonic()
    with pytest.raises(presets.PresetUnavailable) as error:
        EncoderUNet.with_pretrained_encoder("resnet50", "imagenet")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message and "resnet_50_imagenet is not cached" in message
    assert "kerasbrain encoders fetch resnet50 --out DIR" in message


def test_a_cached_preset_is_used_without_asking_the_network(resnet18_preset, tmp_path, monkeypatch):
    """What kagglehub caches is found before any network is tried (the check that keeps offline fast)."""
    import shutil

    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    handle = parse_model_handle(presets._kaggle_handle("resnet_18_imagenet"))
    cache = Cache()
    for name in presets.PRESET_FILES:  # as kagglehub leaves a finished download
        target = cache.get_path(handle, name)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(resnet18_preset / name, target)
        assert not presets.cached("resnet_18_imagenet")  # a file without kagglehub's completion marker is not enough
        cache.mark_as_complete(handle, name)
    assert presets.cached("resnet_18_imagenet") and not presets.cached("resnet_50_imagenet")
    monkeypatch.setattr(presets, "reachable", lambda *a, **k: pytest.fail("the network was asked"))
    model = EncoderUNet.with_pretrained_encoder("resnet18", "imagenet")  # from the cache, offline
    assert model.get_config()["input_normalization"] == "imagenet"


def test_fetch_writes_a_preset_folder_whole_or_not_at_all(resnet18_preset, tmp_path, monkeypatch):
    """`kerasbrain encoders fetch`: the folder keras-hub reads back, and after a disk error half-way, no folder."""
    import errno

    import keras_hub

    monkeypatch.setattr(presets, "download_preset",  # what the download returns, from a local folder here
                        lambda encoder: keras_hub.models.Backbone.from_preset(str(resnet18_preset)))
    out = presets.fetch("resnet18", tmp_path / "fetched")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in resnet18_preset.iterdir())
    for a, b in zip(keras_hub.models.Backbone.from_preset(str(out)).get_weights(),
                    keras_hub.models.Backbone.from_preset(str(resnet18_preset)).get_weights()):
        np.testing.assert_array_equal(a, b)

    def full_disk(self, folder):
        (Path(folder) / "config.json").write_text("{}")  # one file written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(folder) / "model.weights.h5"))

    monkeypatch.setattr(keras_hub.models.Backbone, "save_to_preset", full_disk)
    with pytest.raises(OSError, match="No space left"):
        presets.fetch("resnet18", tmp_path / "half")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fetched"]  # no folder, no hidden partial one
    with pytest.raises(presets.PresetUnavailable, match="fetched: exists and is not empty"):
        presets.fetch("resnet18", out)


def test_the_multitask_network_takes_the_same_pretrained_encoder(resnet18_preset, tmp_path):
    """Seeds 000 / 001's network: the class head and the mask decoder see the preset's encoder, standardised."""
    from kerasbrain.models.multitask import MultiTaskNet
    from kerasbrain.models.presets import build_with_encoder_weights

    model = build_with_encoder_weights(MultiTaskNet, "resnet18", str(resnet18_preset),
                                       decoder_filters=(16, 8, 8, 8, 4))
    unet = EncoderUNet.with_pretrained_encoder("resnet18", str(resnet18_preset))
    x = (_image(seed=5) - np.asarray(IMAGENET_MEAN, "float32")) / np.asarray(IMAGENET_STD, "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.encoder(x)[-1]),
                               keras.ops.convert_to_numpy(unet.encoder(x)[-1]), rtol=1e-5, atol=1e-5)
    assert model.get_config()["input_normalization"] == "imagenet"
    model.save(tmp_path / "multitask.keras")
    loaded = keras.saving.load_model(tmp_path / "multitask.keras")
    image = _image(seed=6)
    for key, value in model.predict_on_batch(image).items():
        np.testing.assert_allclose(loaded.predict_on_batch(image)[key], value, atol=1e-5)
    random = build_with_encoder_weights(MultiTaskNet, "resnet18", "", decoder_filters=(16, 8, 8, 8, 4))
    assert "hub_backbone" not in random.get_config()  # random encoders stay keras-cv's
