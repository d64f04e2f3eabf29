"""Imports every module that registers Keras objects, and names models for the CLI.

Kept in one place so that `import kerasbrain` is enough to load any saved kerasbrain model.
"""

from kerasbrain import losses, metrics  # noqa: F401
from kerasbrain.models import unet  # noqa: F401

MODELS = {"unet3d": unet.UNet}
