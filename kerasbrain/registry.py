"""Imports every module that registers Keras objects, and tells model kinds apart.

Kept in one place so that `import kerasbrain` is enough to load any saved kerasbrain model.
"""

from kerasbrain import losses, metrics  # noqa: F401
from kerasbrain.models import encoder_unet, unet  # noqa: F401


def is_slice_model(model) -> bool:
    """Whether a loaded model segments 2-D slices (LGG) rather than 3-D volumes."""
    return isinstance(model, encoder_unet.EncoderUNet) or getattr(model, "spatial_dims", 3) == 2
