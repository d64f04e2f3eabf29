"""kerasbrain: brain-tumour MRI models in Keras 3, trained, evaluated, explained and served.

Importing `kerasbrain` (or a reader, the label tables, the config reader or the server) does no
work and imports no network: Keras objects are registered where models are built or loaded.
To load a saved model in a script, either

    import kerasbrain.models          # registers every kerasbrain layer, model, loss and metric
    model = keras.saving.load_model("best.keras")

or `kerasbrain.load_model("best.keras")`, which also accepts a run folder and names the file in
its errors. Both keep `safe_mode` on and need no `custom_objects`.
"""

import os

__version__ = "0.1.0"

# TensorFlow turns its oneDNN CPU kernels on by default only on CPUs with AVX-512-class features;
# without them (an AMD EPYC with AVX2, say) a 3-D U-Net's training step is 4-24x slower (see the
# README's speed section). This must be set before TensorFlow loads; a value the user set wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def __getattr__(name):
    if name == "load_model":  # imported on first use so that `import kerasbrain` stays free
        from kerasbrain.inference.model_io import load_model

        return load_model
    raise AttributeError(f"module 'kerasbrain' has no attribute {name!r}")
