"""Functional networks. Importing this package registers every kerasbrain Keras object.

A `.keras` file names its objects "kerasbrain>ClassName"; Keras finds them only once they are
registered, so everything that loads models imports this package first (`kerasbrain.load_model`
does). Losses and metrics are registered here too, because compiled models saved during training
refer to them. keras-cv is imported only when an encoder is built.
"""

from kerasbrain import losses, metrics  # noqa: F401
from kerasbrain.models import (  # noqa: F401
    encoder_unet, ensemble, label_channels, multitask, resenc_unet, simclr, unet, upsampling,
)
