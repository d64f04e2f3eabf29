"""The 3-D family's augmentation inside the compiled training step (`[training] augment_on`).

On a GPU the host cannot augment 4 x 128^3 patches as fast as the network consumes them (nnU-Net
runs a dozen augmentation workers per GPU for that reason). Here the host only crops patches and
draws each one's parameters with `kerasbrain.data.augment.draw_augmentation`, the very draw the
host path uses, so both paths are statistically the same; the resampling and intensity transforms
run in `keras.ops` on the device, on TensorFlow and JAX:

- spatial: rotation, scaling and the flips as one trilinear resampling of the image (zero outside,
  as SciPy's `constant` mode) and one nearest resampling of the targets, every deep-supervision
  level sampled from the full-resolution target (as the host path's strided targets);
- intensity: scale and shift, gamma, Gaussian noise, and nnU-Net's blur, contrast, simulated low
  resolution (each a per-axis linear operator, built on the host from SciPy's own filters and
  applied as three matrix products) and bias field.

For a fixed draw the result equals the host path's within float tolerance (the noise aside, which
each path draws from its own generator); tests/training/test_device_augment.py checks both.
`DeviceAugmentedTraining` wraps a network for `model.fit`; the checkpoints save the network itself.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasbrain.data.augment import bias_terms

AUTO, HOST, DEVICE = "auto", "host", "device"


def resolve_augment_on(mode: str) -> str:
    """"auto" augments on the device where there is a GPU and on the host otherwise (on a CPU the
    host path runs beside the step in tf.data workers; on the device it would take the step's time)."""
    if mode not in (AUTO, HOST, DEVICE):
        raise ValueError(f"augment_on must be 'auto', 'host' or 'device'. Received: {mode!r}")
    if mode != AUTO:
        return mode
    from kerasbrain.runtime import has_gpu

    return DEVICE if has_gpu() else HOST


# ---- device side: keras.ops on a batch -------------------------------------------------------------


def _source_coordinates(matrix, out_shape, in_shape, strides):
    """(B, x, y, z, 3) input coordinates of the output grid (every `strides`-th full-resolution voxel,
    per axis)."""
    centre = ops.convert_to_tensor([(s - 1) / 2.0 for s in in_shape], "float32")
    axes = [ops.arange(n, dtype="float32") * k for n, k in zip(out_shape, strides)]
    grid = ops.stack(ops.meshgrid(*axes, indexing="ij"), axis=-1) - centre
    return ops.einsum("bij,xyzj->bxyzi", matrix, grid) + centre


def _gather(volume, indices):
    """volume (B, X, Y, Z, C) at integer (B, x, y, z, 3) `indices` (already inside the volume)."""
    b, sx, sy, sz, c = (ops.shape(volume)[0],) + tuple(volume.shape[1:])
    batch = ops.reshape(ops.arange(b, dtype="int32"), (-1, 1, 1, 1))
    flat = ((batch * sx + indices[..., 0]) * sy + indices[..., 1]) * sz + indices[..., 2]
    values = ops.take(ops.reshape(volume, (-1, c)), ops.reshape(flat, (-1,)), axis=0)
    return ops.reshape(values, tuple(ops.shape(indices)[:4]) + (c,))


def resample_linear(volume, matrix):
    """Trilinear resampling about the centre, zero where the source lies outside (SciPy's `constant`)."""
    shape = tuple(volume.shape[1:4])
    coords = _source_coordinates(matrix, shape, shape, (1, 1, 1))
    upper = ops.convert_to_tensor([s - 1 for s in shape], "float32")
    inside = ops.all((coords >= -1e-4) & (coords <= upper + 1e-4), axis=-1, keepdims=True)
    coords = ops.clip(coords, 0.0, upper)
    low = ops.floor(coords)
    frac = coords - low
    low = ops.cast(low, "int32")
    high = ops.minimum(low + 1, ops.cast(upper, "int32"))
    out = 0.0
    for corner in range(8):
        pick = [(corner >> axis) & 1 for axis in range(3)]
        index = ops.stack([high[..., a] if p else low[..., a] for a, p in enumerate(pick)], axis=-1)
        weight = 1.0
        for a, p in enumerate(pick):
            weight = weight * (frac[..., a:a + 1] if p else 1.0 - frac[..., a:a + 1])
        out = out + weight * _gather(volume, index)
    return ops.where(inside, out, ops.zeros_like(out))


def resample_nearest(volume, matrix, stride=1):
    """Nearest resampling about the full-resolution centre; with `stride` (one, or one per axis) only
    every stride-th voxel (a deep-supervision level of the transformed volume)."""
    shape = tuple(volume.shape[1:4])
    strides = tuple(stride) if isinstance(stride, (list, tuple)) else (stride,) * 3
    out_shape = tuple(-(-s // k) for s, k in zip(shape, strides))
    coords = _source_coordinates(matrix, out_shape, shape, strides)
    upper = ops.convert_to_tensor([s - 1 for s in shape], "float32")
    # inside as SciPy decides it: the unrounded source within the grid
    inside = ops.all((coords >= -1e-4) & (coords <= upper + 1e-4), axis=-1, keepdims=True)
    index = ops.cast(ops.clip(ops.round(coords), 0.0, upper), "int32")
    out = _gather(volume, index)
    return ops.where(inside, out, ops.zeros_like(out))


def _along_axes(volume, mx, my, mz):
    """Apply a (B, n, n) matrix along each spatial axis of (B, X, Y, Z, C)."""
    volume = ops.einsum("bij,bjyzc->biyzc", mx, volume)
    volume = ops.einsum("bij,bxjzc->bxizc", my, volume)
    return ops.einsum("bij,bxyjc->bxyic", mz, volume)


def _standard_normal(shape, seed):
    """Stateless Gaussian noise from a traced seed. Keras's JAX backend takes an array seed; its
    TensorFlow backend does not, so that one branch calls TensorFlow's stateless op directly."""
    if keras.backend.backend() == "jax":
        return keras.random.normal(shape, seed=ops.cast(seed, "uint32"))
    import tensorflow as tf

    return tf.random.stateless_normal(shape, seed=tf.cast(seed, tf.int32))


def _per_item(value):
    return ops.reshape(value, (-1, 1, 1, 1, 1))


def augment_intensity(image, p: dict):
    """Scale/shift, gamma, noise, blur, contrast, low resolution and bias field, in the host path's order."""
    image = image * p["scale"][:, None, None, None, :] + p["shift"][:, None, None, None, :]
    lo = ops.min(image, axis=(1, 2, 3), keepdims=True)
    hi = ops.max(image, axis=(1, 2, 3), keepdims=True)
    span = ops.maximum(hi - lo, 1e-6)
    gamma = p["gamma"][:, None, None, None, :]
    rescaled = ops.clip((image - lo) / span, 0.0, 1.0)
    image = ops.where(gamma == 1.0, image, ops.power(rescaled, gamma) * span + lo)
    noise = _standard_normal(ops.shape(image), p["noise_seed"][0])
    image = image + _per_item(p["noise_std"]) * noise
    image = _along_axes(image, p["blur_x"], p["blur_y"], p["blur_z"])
    mean = ops.mean(image, axis=(1, 2, 3), keepdims=True)
    lo = ops.min(image, axis=(1, 2, 3), keepdims=True)
    hi = ops.max(image, axis=(1, 2, 3), keepdims=True)
    contrasted = ops.clip((image - mean) * p["contrast"][:, None, None, None, :] + mean, lo, hi)
    image = ops.where(_per_item(p["contrast_drawn"]) > 0, contrasted, image)
    image = _along_axes(image, p["low_res_x"], p["low_res_y"], p["low_res_z"])
    shape = tuple(image.shape[1:4])
    axes = ops.meshgrid(*[ops.linspace(-1.0, 1.0, n) for n in shape], indexing="ij")
    terms = ops.stack(bias_terms(axes), axis=-1)  # (X, Y, Z, terms)
    field = ops.einsum("xyzk,bk->bxyz", terms, p["bias"])
    scale = ops.maximum(ops.max(ops.abs(field), axis=(1, 2, 3), keepdims=True), 1e-6)
    field = ops.reshape(p["bias_strength"], (-1, 1, 1, 1)) * field / scale
    return image * ops.exp(field)[..., None]


def augment_batch(images, targets, params: dict):
    """Augment a batch on the device: returns (images, targets) with `targets` in its own structure
    (one full-resolution tensor, or the deep-supervision tuple whose levels sample the full one with
    the network's strides, read from their static shapes)."""
    matrix = params["spatial"]
    full = targets[0] if isinstance(targets, (tuple, list)) else targets
    images = resample_linear(images, matrix)
    if isinstance(targets, (tuple, list)):
        steps = [tuple(round(f / t) for f, t in zip(full.shape[1:4], level.shape[1:4])) for level in targets]
        targets = tuple(resample_nearest(full, matrix, step) for step in steps)
    else:
        targets = resample_nearest(full, matrix)
    return augment_intensity(images, params), targets


@keras.saving.register_keras_serializable(package="kerasbrain")
class DeviceAugmentedTraining(keras.Model):
    """`network` trained on batches `{"image", "augment"}` augmented inside the compiled step.

    Batches without "augment" (validation) pass straight through. The run's checkpoints save the
    network itself (`run_callbacks(saved_model=...)`), so best.keras and last.keras are the plain network.
    """

    def __init__(self, network: keras.Model, **kwargs):
        kwargs.setdefault("name", f"{network.name}_device_augmented")
        super().__init__(**kwargs)
        self.network = network
        self.built = network.built  # nothing of its own to build (resuming reads its weights before fit)

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            inputs = inputs["image"]
        return self.network(inputs, training=training)

    def train_step(self, *args):
        *state, data = args  # TensorFlow passes (data,), JAX (state, data)
        x, y = data[0], data[1]
        if isinstance(x, dict) and "augment" in x:
            image, y = augment_batch(x["image"], y, x["augment"])
            data = (image, y) + tuple(data[2:])
        return super().train_step(*state, data)

    def get_config(self):
        return {**super().get_config(), "network": keras.saving.serialize_keras_object(self.network)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)

