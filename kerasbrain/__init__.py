"""kerasbrain: brain-tumour MRI models in Keras 3, trained, evaluated, explained and served.

Importing the package registers its Keras layers, models, losses and metrics, so any script can
`keras.saving.load_model("model.keras")` after `import kerasbrain`, with `safe_mode` on and no
`custom_objects`. It does no other work at import time.
"""

__version__ = "0.1.0"

from kerasbrain import registry as _registry  # noqa: E402,F401  (registers serializable objects)
