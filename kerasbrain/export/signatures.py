"""The serving contract of each model kind: input/output names, shapes and the graph behind them.

These names are the public interface that TF Serving clients code against; they never change
and never depend on auto-generated tensor names.

Volumetric segmentation (3-D U-Net), signature `serving_default`:
    inputs   image         float32 (batch, x, y, z, 4)  raw intensities (FLAIR, T1, T1Gd, T2), RAS+,
                                                       sides multiples of the model's size_divisor
             channel_mean  float32 (batch, 4)           per-modality mean of the case's head voxels
             channel_std   float32 (batch, 4)           per-modality std of the case's head voxels
    outputs  probabilities float32 (batch, x, y, z, 3)  sigmoid probabilities of WT, TC, ET
             mask          uint8   (batch, x, y, z)     internal labels (0 bg, 1 necrotic core,
                                                       2 edema, 3 enhancing) decoded with BraTS nesting
The statistics travel with each window because a window alone cannot know its case's statistics;
`kerasbrain.intensity.head_statistics` computes them, and the graph normalises exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
from keras import ops

from kerasbrain.data.labels import BACKGROUND, EDEMA, ENHANCING, NECROTIC_CORE
from kerasbrain.intensity import normalize_ops
from kerasbrain.windows import axis_divisors, size_divisor

VOLUME_INPUTS = ("image", "channel_mean", "channel_std")
VOLUME_OUTPUTS = ("probabilities", "mask")
THRESHOLD = 0.5


def decode_regions_ops(probabilities, threshold: float = THRESHOLD):
    """keras.ops twin of `kerasbrain.data.labels.regions_to_labels` on thresholded probabilities."""
    wt = probabilities[..., 0] >= threshold
    tc = probabilities[..., 1] >= threshold
    et = probabilities[..., 2] >= threshold
    labels = ops.where(et, ENHANCING, ops.where(tc, NECROTIC_CORE, ops.where(wt, EDEMA, BACKGROUND)))
    return ops.cast(labels, "uint8")


def regions_of_labels_ops(labels):
    """keras.ops twin of `kerasbrain.data.labels.labels_to_regions`: (...) labels -> (..., 3) boolean WT, TC, ET."""
    enhancing = ops.equal(labels, ENHANCING)
    return ops.stack([ops.not_equal(labels, BACKGROUND), ops.logical_or(ops.equal(labels, NECROTIC_CORE), enhancing),
                      enhancing], axis=-1)


def volume_segmentation_endpoint(model: keras.Model):
    """(function, input signature, JAX shape constraints) of the volumetric serving signature."""
    channels = model.inputs[0].shape[-1]
    dx, dy, dz = axis_divisors(model)

    def serve(image, channel_mean, channel_std):
        outputs = model(normalize_ops(image, channel_mean, channel_std), training=False)
        probabilities = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        return {"probabilities": probabilities, "mask": decode_regions_ops(probabilities)}

    signature = [
        keras.InputSpec(shape=(None, None, None, None, channels), dtype="float32", name="image"),
        keras.InputSpec(shape=(None, channels), dtype="float32", name="channel_mean"),
        keras.InputSpec(shape=(None, channels), dtype="float32", name="channel_std"),
    ]
    # jax2tf needs to know that spatial sides are multiples of the divisors to prove the skip
    # concatenations line up for every input size.
    polymorphic = [f"(b, {dx}*x, {dy}*y, {dz}*z, {channels})", f"(b, {channels})", f"(b, {channels})"]
    return serve, signature, polymorphic


CASE_SIGNATURE = "segment_case"
CASE_INPUTS = ("image",)


def case_segmentation_endpoint(model: keras.Model, settings: dict):
    """(function, input signature, JAX shape constraints) of the whole-case signature `segment_case`.

    Volumetric segmentation, signature `segment_case` (usually one case per request, n = 1):
        inputs   image          float32 (n, x, y, z, 4)  raw cases in RAS+ (FLAIR, T1, T1Gd, T2), any size
        outputs  probabilities  float32 (n, x, y, z, 3)  WT, TC, ET probabilities in the same grid
                 mask           uint8   (n, x, y, z)     labels decoded with BraTS nesting at the run's threshold
                 expected_dice  float32 (n, 3)           each region's Dice expected from the probabilities
                                                         (`metrics/case_confidence.py`), of `mask` before
                                                         post-processing: a case's review order, 12 bytes
    The cases of a request are predicted one by one, each with its own statistics: a server that
    merges concurrent requests along the first axis (TF Serving's batching) merges whole cases.
    Head statistics, the head box, padding, the window grid, Gaussian blending and mirror TTA run in
    the graph (`inference/whole_case.py`) with the run's window, overlap, batch size and mirror
    setting (`settings`, the manifest's `inference`). Connected-component post-processing needs the
    voxel spacing and stays with the client, as in local prediction.
    """
    from kerasbrain.inference.whole_case import cases_probabilities
    from kerasbrain.metrics.case_confidence import expected_dice_ops

    channels = model.inputs[0].shape[-1]
    window = tuple(int(w) for w in settings["window"])
    threshold = float(settings.get("threshold", THRESHOLD))

    def call(windows):
        outputs = model(windows, training=False)
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    def serve(image):
        probabilities = cases_probabilities(call, image, window, float(settings["overlap"]),
                                           int(settings["batch_size"]), int(model.outputs[0].shape[-1]),
                                           bool(settings["mirror"]))
        mask = decode_regions_ops(probabilities, threshold)
        return {"probabilities": probabilities, "mask": mask,
                "expected_dice": expected_dice_ops(probabilities, regions_of_labels_ops(mask))}

    signature = [keras.InputSpec(shape=(None, None, None, None, channels), dtype="float32", name="image")]
    return serve, signature, [f"(n, x, y, z, {channels})"]


SLICE_INPUTS = ("image",)
SLICE_OUTPUTS = ("probabilities", "mask", "expected_dice")


def slice_segmentation_endpoint(model: keras.Model):
    """(function, input signature, JAX shape constraints) of the 2-D slice signature.

    Slice segmentation (LGG), signature `serving_default`:
        inputs   image          float32 (batch, h, w, 3)  raw 0-255 pixel values (pre-contrast, FLAIR,
                                                         post-contrast); sides multiples of the model's divisor
        outputs  probabilities  float32 (batch, h, w)     tumour probability
                 mask           uint8   (batch, h, w)     1 where probability >= 0.5
                 expected_dice  float32 (batch,)          each slice's Dice expected from its probabilities
                                                         (`metrics/case_confidence.py`): its review order
    Scaling to [0, 1] happens in the graph. A model trained on median + CLAHE enhanced slices
    expects enhanced pixels (OpenCV's CLAHE has no graph form); its manifest says so.
    """
    from kerasbrain.metrics.case_confidence import expected_dice_ops

    divisor = size_divisor(model)
    channels = model.inputs[0].shape[-1]

    def serve(image):
        probabilities = model(ops.cast(image, "float32") / 255.0, training=False)[..., 0]
        mask = probabilities >= THRESHOLD
        return {"probabilities": probabilities, "mask": ops.cast(mask, "uint8"),
                "expected_dice": expected_dice_ops(probabilities[..., None], mask[..., None])[:, 0]}

    signature = [keras.InputSpec(shape=(None, None, None, channels), dtype="float32", name="image")]
    return serve, signature, [f"(b, {divisor}*h, {divisor}*w, {channels})"]


def classification_outputs(model: keras.Model) -> list[str]:
    """Output names of the classification signature for the model's tasks."""
    tasks = tuple(getattr(model, "tasks", ("class",)))
    names = []
    if "class" in tasks:
        names += ["class_probabilities", "class"]
    if "mask" in tasks:
        names += ["mask_probabilities", "mask"]
    return names


def image_classification_endpoint(model: keras.Model):
    """(function, input signature, JAX shape constraints) of the classification / multi-task signature.

    Classification and multi-task (seeds 000 / 001), signature `serving_default`:
        inputs   image               float32 (batch, s, s, 3)  raw 0-255 RGB, resized to the run's image size
                                                              (`kerasbrain.data.tumour_images.prepare_image`)
        outputs  class_probabilities float32 (batch, 4)        glioma, meningioma, no tumour, pituitary
                 class               int32   (batch,)          the most probable class index
                 mask_probabilities  float32 (batch, s, s)     tumour probability (multi-task models)
                 mask                uint8   (batch, s, s)     1 where mask_probabilities >= 0.5
    """
    divisor = size_divisor(model)
    channels = model.inputs[0].shape[-1]

    def serve(image):
        outputs = model(ops.cast(image, "float32") / 255.0, training=False)
        result = {}
        if "class" in outputs:
            result["class_probabilities"] = outputs["class"]
            result["class"] = ops.cast(ops.argmax(outputs["class"], axis=-1), "int32")
        if "mask" in outputs:
            result["mask_probabilities"] = outputs["mask"][..., 0]
            result["mask"] = ops.cast(outputs["mask"][..., 0] >= THRESHOLD, "uint8")
        return result

    signature = [keras.InputSpec(shape=(None, None, None, channels), dtype="float32", name="image")]
    return serve, signature, [f"(b, {divisor}*h, {divisor}*w, {channels})"]


# --- the registry of serving kinds -----------------------------------------------------------------
@dataclass(frozen=True)
class ServingKind:
    """One serving contract: the graph behind `serving_default`, what the manifest says, warm-up inputs.

    A family names its kind (`ModelFamily.serving_kind`); export looks it up here, so a new serving
    kind is one `register_serving_kind` call, not a branch in the exporter.
    """

    name: str
    endpoint: Callable  # model -> (function, input signature, JAX shape constraints)
    manifest: Callable  # (model, requires_clahe) -> the kind's manifest entries
    warmup_inputs: Callable  # (window, channels, batch) -> {input name: zeros of the signature's shapes}
    #: {signature name: (model, the run's inference settings) -> (function, input signature, JAX constraints)}
    #: of signatures served beside `serving_default` when the export knows the run's settings.
    extra_endpoints: dict = field(default_factory=dict)


SERVING_KIND_REGISTRY: dict[str, ServingKind] = {}


def register_serving_kind(kind: ServingKind) -> ServingKind:
    SERVING_KIND_REGISTRY[kind.name] = kind
    return kind


def serving_kind(name: str) -> ServingKind:
    if name not in SERVING_KIND_REGISTRY:
        raise ValueError(f"no serving signature of kind {name!r}; known: {sorted(SERVING_KIND_REGISTRY)}")
    return SERVING_KIND_REGISTRY[name]


def _image_only(window, channels, batch):
    return {"image": np.zeros((batch,) + tuple(window) + (channels,), np.float32)}


def _volume_warmup(window, channels, batch):  # the volumetric signature also takes the case statistics
    return {**_image_only(window, channels, batch), "channel_mean": np.zeros((batch, channels), np.float32),
            "channel_std": np.ones((batch, channels), np.float32)}


def _volume_manifest(model, requires_clahe):
    from kerasbrain.data.labels import REGIONS

    # size_divisor: a multiple every side may be; axis_divisors: what each side must be (they differ
    # where the network leaves thick slices unpooled)
    return dict(inputs=list(VOLUME_INPUTS), outputs=list(VOLUME_OUTPUTS), size_divisor=size_divisor(model),
                axis_divisors=list(axis_divisors(model)), regions=list(REGIONS))


def _slice_manifest(model, requires_clahe):
    return dict(inputs=list(SLICE_INPUTS), outputs=list(SLICE_OUTPUTS), input_scale="0-255",
                size_divisor=size_divisor(model), requires_clahe=requires_clahe)


def _classification_manifest(model, requires_clahe):
    from kerasbrain.data.classes import CLASSES

    return dict(inputs=["image"], outputs=classification_outputs(model), input_scale="0-255",
                size_divisor=size_divisor(model), classes=list(CLASSES))


register_serving_kind(ServingKind("volume_segmentation", volume_segmentation_endpoint, _volume_manifest,
                                  _volume_warmup, {CASE_SIGNATURE: case_segmentation_endpoint}))
register_serving_kind(ServingKind("slice_segmentation", slice_segmentation_endpoint, _slice_manifest, _image_only))
register_serving_kind(ServingKind("image_classification", image_classification_endpoint, _classification_manifest,
                                  _image_only))
