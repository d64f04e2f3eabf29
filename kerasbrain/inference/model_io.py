"""Loading saved kerasbrain models with clear errors."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import keras

import kerasbrain.models  # noqa: F401  (registers the custom objects)
from kerasbrain.data.errors import DataError
from kerasbrain.models.upsampling import with_upsampling
from kerasbrain.runs import BEST_MODEL
from kerasbrain.serialization import check_archive

_LOADED = contextvars.ContextVar("kerasbrain_loaded_models", default=None)


@contextlib.contextmanager
def reuse_loaded_models():
    """Within this block, loading the same unchanged file under the same dtype policy again returns
    the model already loaded (a folder of cases is predicted with one model, not one per case)."""
    token = _LOADED.set({})
    try:
        yield
    finally:
        _LOADED.reset(token)


def load_model(path) -> keras.Model:
    """Load a `.keras` model (safe mode, no custom_objects needed); errors name the file.

    U-Nets saved with transposed convolutions come back with the equivalent, faster
    `PixelShuffleUpsampling` (same weights, same predictions). An ensemble file comes back as one
    `EnsembleNet` of its members.
    """
    path = Path(path)
    if path.is_dir() and (path / BEST_MODEL).exists():  # a run folder
        path = path / BEST_MODEL
    if not path.is_file():
        raise DataError(f"{path}: model file not found")
    if path.suffix == ".json":  # crossval's ensemble.json: its members averaged in one model
        from kerasbrain.inference.ensemble import load_ensemble_model

        return load_ensemble_model(path)
    if path.suffix != ".keras":
        raise DataError(f"{path}: expected a .keras model file (or a crossval ensemble.json)")
    loaded = _LOADED.get()
    key = (str(path.resolve()), path.stat().st_mtime_ns, keras.config.dtype_policy().name)
    if loaded is not None and key in loaded:
        return loaded[key]
    check_archive(path)  # before Keras opens it: no smuggled files or pickles
    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:
        raise DataError(f"{path}: cannot be loaded as a Keras model ({type(exc).__name__}: {exc})") from exc
    model = with_upsampling(model)
    if loaded is not None:
        loaded[key] = model
    return model


def output_channels(model: keras.Model) -> int:
    out = model.outputs[0] if isinstance(model.outputs, (list, tuple)) else model.outputs
    return int(out.shape[-1])
