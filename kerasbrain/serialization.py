"""One decorator that registers kerasbrain's Keras objects under a fixed package name.

Saved `.keras` files refer to objects as "kerasbrain>ClassName"; renaming a registered class or
changing this package name would break every saved model, so neither may change.
"""

import keras

PACKAGE = "kerasbrain"


def register(cls):
    """Register `cls` for `.keras` (de)serialization under `kerasbrain>ClassName`."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
