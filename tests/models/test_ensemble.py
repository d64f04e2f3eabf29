"""EnsembleNet: the members' weighted mean in one model (any batch, several different items)."""

import keras
import numpy as np
import pytest

from kerasbrain.models.encoder_unet import EncoderUNet
from kerasbrain.models.ensemble import EnsembleNet
from kerasbrain.models.unet import UNet
from kerasbrain.windows import size_divisor


def test_the_output_is_the_members_weighted_mean():
    keras.utils.set_random_seed(2)
    members = [UNet(base_filters=4, depth=2), UNet(base_filters=4, depth=3, deep_supervision=1)]
    ensemble = EnsembleNet(members, [0.3, 0.7])
    x = np.random.default_rng(0).normal(size=(3, 16, 24, 8, 4)).astype("float32")
    first = np.asarray(members[0].predict_on_batch(x))
    second = np.asarray(members[1].predict_on_batch(x)[0])  # deep supervision: the full-resolution output
    np.testing.assert_allclose(np.asarray(ensemble.predict_on_batch(x)), 0.3 * first + 0.7 * second, atol=1e-6)
    assert size_divisor(ensemble) == 8 and ensemble.spatial_dims == 3
    assert [m.name for m in ensemble.members] == ["member_0", "member_1"]


def test_members_must_be_of_one_kind():
    with pytest.raises(ValueError, match="must all be 2-D or all 3-D"):
        EnsembleNet([UNet(base_filters=4, depth=2), EncoderUNet("resnet18")], [0.5, 0.5])
    with pytest.raises(ValueError, match="one weight each"):
        EnsembleNet([UNet(base_filters=4, depth=2)], [0.5, 0.5])
