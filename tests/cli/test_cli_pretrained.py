"""A U-Net on a pretrained keras-hub encoder through train, evaluate, predict and export.

The encoder comes from a local preset folder in keras-hub's own format (what `kerasbrain encoders
fetch` writes); stage 1 freezes it, so the trained model's encoder must still be the preset's, and
every later step must see the ImageNet normalisation inside the model.
"""

import cv2
import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once

CONFIG = """
[data]
n_splits = 4
test_fold = 1
[model]
encoder = "resnet18"
encoder_weights = "{preset}"
[training]
batch_size = 4
[[stages]]
epochs = 1
learning_rate = 1e-3
freeze_encoder = true
"""


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    from kerasbrain.models.backbones import hub_backbone

    root = tmp_path_factory.mktemp("pretrained")
    keras.utils.set_random_seed(6)
    hub_backbone("resnet18").save_to_preset(str(root / "preset"))
    result = run("synth", "lgg", "--patients", 4, "--slices", 3, "--image-size", 64, "--out", root / "lgg",
                 "--seed", 3)
    assert result.exit_code == 0, result.output
    (root / "config.toml").write_text(CONFIG.format(preset=root / "preset"))
    result = run("train", "unet2d", "--data", root / "lgg", "--config", root / "config.toml", "--out", root / "run")
    assert result.exit_code == 0, result.output
    return root


@once
def test_train_evaluate_predict_export_with_a_pretrained_encoder(pretrained_run, tmp_path):
    import keras_hub
    import tensorflow as tf

    from kerasbrain.inference.model_io import load_model

    root = pretrained_run
    model = load_model(root / "run" / "best.keras")
    assert model.input_normalization == "imagenet" and model.hub_backbone
    preset = keras_hub.models.Backbone.from_preset(str(root / "preset"))
    for layer in (layer for layer in model.encoder.layers if layer.weights):  # stage 1 froze it: still the preset
        for mine, theirs in zip(layer.get_weights(), preset.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)

    result = run("evaluate", "--model", root / "run", "--data", root / "lgg", "--subset", "test", "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output

    image_path = sorted((root / "lgg" / "kaggle_3m").glob("*/*_1.tif"))[0]
    result = run("predict", "--model", root / "run" / "best.keras", "--input", image_path, "--out", tmp_path / "m.png")
    assert result.exit_code == 0, result.output
    pixels = cv2.cvtColor(cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB).astype("float32")
    expected = np.asarray(model.predict_on_batch(pixels[None] / 255.0))[0, ..., 0] >= 0.5
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED) > 0, expected)

    result = run("export", "--model", root / "run" / "best.keras", "--name", "hub", "--root", tmp_path / "saved",
                 "--no-warmup")
    assert result.exit_code == 0, result.output
    served = tf.saved_model.load(str(tmp_path / "saved" / "hub" / "1")).signatures["serving_default"]
    probabilities = served(image=tf.constant(pixels[None]))["probabilities"].numpy()[0]
    np.testing.assert_allclose(probabilities, np.asarray(model.predict_on_batch(pixels[None] / 255.0))[0, ..., 0],
                               atol=1e-5)
