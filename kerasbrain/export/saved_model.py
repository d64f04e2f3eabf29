"""Writing a model to `saved_models/<name>/<version>/` as a SavedModel TF Serving can load.

Works from the TensorFlow and JAX backends through `keras.export.ExportArchive`. A version is
written to a hidden temporary folder beside its final place and renamed into place when complete,
so a server polling the folder never sees half a model. Optional warm-up requests are stored in
`assets.extra/tf_serving_warmup_requests`, where TF Serving replays them before serving a version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import keras

from kerasbrain.export.layout import MANIFEST, MODEL_CARD, read_manifest, versions  # noqa: F401  (read_manifest re-exported)
from kerasbrain.export.model_card import model_card
from kerasbrain.export.signatures import serving_kind
from kerasbrain.windows import spatial_dims

WARMUP_FILE = "tf_serving_warmup_requests"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


#: The serving signature of a segmentation network, by its number of spatial dimensions.
SERVING_KINDS = {3: "volume_segmentation", 2: "slice_segmentation"}


def model_kind(model: keras.Model) -> str:
    try:
        return SERVING_KINDS[spatial_dims(model)]
    except ValueError as exc:
        raise ValueError(f"no serving signature is defined for this model ({exc})") from exc


def write_saved_model(model: keras.Model, path: str | os.PathLike, requires_clahe: bool = False,
                      kind: str | None = None) -> dict:
    """Write `model` with its `serving_default` signature to `path`; returns the manifest.

    `kind` (a family's serving kind) picks the signature; by default it follows the network's
    spatial dimensions (volume or slice segmentation).
    """
    kind = kind or model_kind(model)
    spec = serving_kind(kind)
    fn, signature, polymorphic = spec.endpoint(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    kwargs = {}
    if keras.backend.backend() == "jax":
        kwargs["jax2tf_kwargs"] = {"polymorphic_shapes": polymorphic}
    archive.add_endpoint("serving_default", fn, input_signature=signature, **kwargs)
    archive.write_out(str(path), verbose=False)
    manifest = {"kind": kind, "signature": "serving_default", "channels": int(model.inputs[0].shape[-1]),
                "exported_from_backend": keras.backend.backend()}
    manifest.update(spec.manifest(model, requires_clahe))
    return manifest


def warmup_request(model_name: str, window: tuple[int, ...], channels: int = 4, batch: int = 1,
                   kind: str | None = None):
    """A PredictionLog with one PredictRequest of the signature's shapes (zeros are fine for warm-up)."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    kind = kind or SERVING_KINDS[len(window)]
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default"))
    for name, value in serving_kind(kind).warmup_inputs(window, channels, batch).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def export_version(model: keras.Model, name: str, root: str | os.PathLike = "saved_models", version: int | None = None,
                   warmup_window: tuple[int, ...] | None = None, requires_clahe: bool = False,
                   manifest_extra: dict | None = None, kind: str | None = None, run_dir=None) -> Path:
    """Export `model` as `root/name/version` (next integer when None), atomically; returns the folder.

    `manifest_extra` is added to `assets.extra/kerasbrain.json`: the family records its name and
    the run's inference settings there, so a client of the served model predicts as the run does.
    `assets.extra/MODEL_CARD.md` describes the version from the manifest and `run_dir` (the run
    folder the model came from, if any).
    """
    if not _NAME.match(name):
        raise ValueError(f"model name must be letters, digits, '_', '-' or '.'. Received: name={name!r}")
    model_root = Path(root) / name
    model_root.mkdir(parents=True, exist_ok=True)
    existing = versions(model_root)
    version = version if version is not None else (existing[-1] + 1 if existing else 1)
    if version < 1:
        raise ValueError(f"version must be a positive integer. Received: version={version}")
    final = model_root / str(version)
    if final.exists():
        raise FileExistsError(f"{final}: version {version} of {name!r} already exists; versions are immutable")
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_root))
    try:
        manifest = write_saved_model(model, staging / "model", requires_clahe, kind)
        extra = staging / "model" / "assets.extra"
        extra.mkdir(parents=True, exist_ok=True)
        manifest.update(manifest_extra or {})
        manifest.update(name=name, version=version)
        if warmup_window is not None:
            import tensorflow as tf

            with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
                writer.write(warmup_request(name, warmup_window, manifest["channels"], kind=manifest["kind"])
                             .SerializeToString())
            manifest["warmup_window"] = list(warmup_window)
        (extra / MANIFEST).write_text(json.dumps(manifest, indent=2))
        (extra / MODEL_CARD).write_text(model_card(manifest, Path(run_dir) if run_dir else None))
        os.rename(staging / "model", final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final

