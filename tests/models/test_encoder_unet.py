
import numpy as np
import pytest

from kerasbrain.models.backbones import encoder_model
from kerasbrain.models.encoder_unet import EncoderUNet
from tests.conftest import once


@pytest.mark.parametrize("encoder,params", [("resnet18", 11_186_112), ("resnet50", 23_561_152),
                                            ("efficientnet_b0", 4_049_564)])
@once
def test_encoders_have_the_published_size(encoder, params):
    # keras-cv backbones without classification heads: ResNet18 11.2 M, ResNet50 23.6 M, EfficientNet-B0 4.0 M
    assert encoder_model(encoder).count_params() == params


@pytest.mark.parametrize("encoder", ["resnet34", "efficientnet_b0"])
def test_output_shape(encoder):
    model = EncoderUNet(encoder, decoder_filters=(32, 16, 16, 8, 8))
    y = model.predict_on_batch(np.zeros((2, 64, 96, 3), "float32"))
    assert y.shape == (2, 64, 96, 1) and ((y >= 0) & (y <= 1)).all()


def test_freezing_and_loading_the_encoder(tmp_path):
    model = EncoderUNet("resnet18", decoder_filters=(32, 16, 16, 8, 8))
    model.encoder.trainable = False
    assert all(not w.trainable for w in model.encoder.weights)
    assert any(w.trainable for w in model.weights)
    donor = encoder_model("resnet18")
    donor.save(tmp_path / "encoder.keras")
    model.load_encoder_weights(tmp_path / "encoder.keras")
    for a, b in zip(model.encoder.get_weights(), donor.get_weights()):
        np.testing.assert_array_equal(a, b)
    encoder_model("efficientnet_b0").save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="do not match a resnet18 encoder"):
        model.load_encoder_weights(tmp_path / "other.keras")


@pytest.mark.parametrize("image_skip_filters,last_skip_channels", [(32, 32), (0, 3)])
def test_full_resolution_skip(image_skip_filters, last_skip_channels):
    # the decoder's last (stride-1) level concatenates its upsampled features with a conv block over
    # the image (or, for models saved before 2026-11-27, the raw 3-channel image)
    model = EncoderUNet("resnet18", decoder_filters=(32, 16, 16, 8, 8), image_skip_filters=image_skip_filters)
    assert model.get_layer("decoder4_concat").output.shape[-1] == 8 + last_skip_channels
    assert any(layer.name.startswith("image_skip") for layer in model.layers) == bool(image_skip_filters)
    y = model.predict_on_batch(np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32"))
    assert y.shape == (2, 64, 64, 1)
