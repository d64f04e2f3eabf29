import pytest

from kerasbrain.windows import check_window, size_divisor, spatial_dims, stage_strides, stride_divisors


def test_divisors_of_real_networks():
    from kerasbrain.models.encoder_unet import EncoderUNet
    from kerasbrain.models.unet import UNet

    unet = UNet(spatial_dims=3, in_channels=4, out_channels=3, base_filters=2, depth=3)
    assert size_divisor(unet) == max(stride_divisors(stage_strides(None, 3))) == 8 and spatial_dims(unet) == 3
    encoder = EncoderUNet("resnet18", decoder_filters=(8, 8, 8, 8, 8))
    assert size_divisor(encoder) == 32 and spatial_dims(encoder) == 2


def test_check_window():
    assert check_window([32, 64, 16], 16) == (32, 64, 16)
    with pytest.raises(ValueError, match=r"patch_size sides must be positive multiples of 16 for this model. "
                                         r"Received: \(32, 40, 16\)"):
        check_window((32, 40, 16), 16, "patch_size")
    with pytest.raises(ValueError, match="positive multiples"):
        check_window((0, 16, 16), 16)
