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


def _add(archive, name: str, endpoint):
    """Add one (function, input signature, JAX shape constraints) endpoint; returns its tf.function."""
    fn, signature, polymorphic = endpoint
    kwargs = {}
    if keras.backend.backend() == "jax":
        kwargs["jax2tf_kwargs"] = {"polymorphic_shapes": polymorphic}
    return archive.add_endpoint(name, fn, input_signature=signature, **kwargs)


DESCRIBE_SIGNATURE = "describe"


def _describe_endpoint(description: dict):
    """A signature answering the version's run settings as JSON, for clients without `saved_models/`.

    TF Serving's metadata API returns signature definitions only; a client predicting a whole case
    still needs the run's threshold, post-processing and target spacing. Input `request` (n,) strings
    (any), output `manifest` (n,) the JSON.
    """
    import tensorflow as tf

    text = json.dumps(description, sort_keys=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="request")])
    def describe(request):  # one answer per request row, so that batching servers may merge requests
        return {"manifest": tf.fill(tf.shape(request), tf.constant(text))}

    describe.get_concrete_function()
    return describe


def write_saved_model(model: keras.Model, path: str | os.PathLike, requires_clahe: bool = False,
                      kind: str | None = None, settings: dict | None = None, description: dict | None = None) -> dict:
    """Write `model` with its `serving_default` signature to `path`; returns the manifest.

    `kind` (a family's serving kind) picks the signature; by default it follows the network's
    spatial dimensions (volume or slice segmentation). With the run's inference `settings` the
    kind's extra signatures are written too (a volumetric model's whole-case `segment_case` and its
    gzip twin `segment_case_compressed`); with a `description` (the manifest's run entries), a
    `describe` signature that answers it.
    """
    from kerasbrain.export.compressed import COMPRESSED_INPUTS, COMPRESSED_SUFFIX, compressed_endpoint

    kind = kind or model_kind(model)
    spec = serving_kind(kind)
    archive = keras.export.ExportArchive()
    archive.track(model)
    _add(archive, "serving_default", spec.endpoint(model))
    channels = int(model.inputs[0].shape[-1])
    extra = {}
    for name, endpoint in (spec.extra_endpoints if settings else {}).items():
        case_fn = _add(archive, name, endpoint(model, settings))
        archive.add_endpoint(name + COMPRESSED_SUFFIX, compressed_endpoint(case_fn, channels))
        extra[name] = {"inputs": ["image"], "outputs": ["probabilities", "mask", "expected_dice"],
                       "settings": {k: settings[k] for k in ("window", "overlap", "batch_size", "mirror", "threshold")}}
        extra[name + COMPRESSED_SUFFIX] = {"inputs": list(COMPRESSED_INPUTS), "outputs": ["mask", "expected_dice"],
                                           "same_as": name}
    if description:
        archive.add_endpoint(DESCRIBE_SIGNATURE, _describe_endpoint(description))
        extra[DESCRIBE_SIGNATURE] = {"inputs": ["request"], "outputs": ["manifest"]}
    # Serving never asks for gradients; JAX's converted functions carry custom ones that a wrapping
    # tf.function (the gzip twin) cannot re-trace, so none are saved.
    import tensorflow as tf

    archive.write_out(str(path), options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
                      verbose=False)
    manifest = {"kind": kind, "signature": "serving_default", "channels": channels,
                "exported_from_backend": keras.backend.backend()}
    if extra:
        manifest["signatures"] = extra
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
        settings = (manifest_extra or {}).get("inference")
        manifest = write_saved_model(model, staging / "model", requires_clahe, kind, settings, manifest_extra)
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

