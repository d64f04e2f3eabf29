"""Choosing how Keras compiles and at what precision it computes on the machine at hand.

On CPUs, XLA makes 3-D convolutions 7-8x slower than TensorFlow's plain graph path (measured:
3.4 s vs 26 s for one 4 x 128^3 window of the 5.7 M-parameter U-Net), while on GPUs XLA is the
faster choice. Keras's own "auto" picks XLA on TensorFlow everywhere, so kerasbrain resolves
"auto" itself: XLA on a GPU, the plain graph on a CPU. The JAX backend always compiles with XLA.

Precision: "bf16" builds models under Keras's `mixed_bfloat16` policy (bfloat16 compute, float32
weights; kerasbrain's final activations, losses and metrics stay float32), "fp32" under
`float32`, and "auto" picks bf16 on a GPU with bfloat16 tensor cores (compute capability 8.0 or
newer) and fp32 elsewhere: CPUs gain nothing from bfloat16 convolutions.
"""

from __future__ import annotations

import contextlib

import keras

COMPILE_MODES = ("auto", "xla", "graph")
PRECISIONS = ("auto", "fp32", "bf16")
_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def has_gpu() -> bool:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def gpu_compute_capability() -> float | None:
    """Compute capability (e.g. 9.0) of the first GPU the backend sees, or None without one."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        major, minor = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return major + minor / 10
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return float(getattr(gpus[0], "compute_capability", 0)) if gpus else None
    return None


def resolve_precision(mode: str = "auto") -> str:
    """Map a precision mode to a Keras dtype policy name (see the module docstring)."""
    if mode not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={mode!r}")
    if mode == "auto":
        capability = gpu_compute_capability()
        mode = "bf16" if capability is not None and capability >= 8.0 else "fp32"
    return _POLICIES[mode]


@contextlib.contextmanager
def precision_policy(mode: str = "auto"):
    """Build models inside this block at `mode`'s precision; the global policy is restored afterwards.

    Layers take their dtype policy when they are created, so a model built (or loaded) here keeps
    this precision for its whole life.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve_precision(mode))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_jit_compile(mode: str = "auto") -> bool:
    """Map a compile mode to Keras's `jit_compile` flag (see the module docstring)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {COMPILE_MODES}. Received: mode={mode!r}")
    if keras.backend.backend() == "jax":
        return True
    if mode == "auto":
        return has_gpu()
    return mode == "xla"


BLEND_MODES = ("auto", "device", "host")


class LocalPredictor:
    """A window predictor `(raw batch, mean, std) -> probabilities` running `model` in this process.

    Windows arrive as raw intensities with their case's per-modality statistics ((C,) or (B, C))
    and are normalised by `kerasbrain.intensity.normalize_np`, exactly as the exported serving graph
    does; the first output is used when the model has deep supervision. `volume_predictor` offers
    the whole-volume path that blends windows on the device (`kerasbrain.inference.device_window`).
    """

    def __init__(self, model: keras.Model, compile_mode: str = "auto"):
        self.model = model
        self.compile_mode = compile_mode
        self.jit_compile = resolve_jit_compile(compile_mode)
        model.jit_compile = self.jit_compile
        self._volume = {}
        self._member_moments = None

    def member_moments(self) -> "LocalPredictor | None":
        """For an ensemble, a predictor of its members' mean and mean of squares (2C channels), so an
        uncertainty spans members and mirror views; None for one network."""
        if not hasattr(self.model, "moments_model"):
            return None
        if self._member_moments is None:
            self._member_moments = LocalPredictor(self.model.moments_model(), self.compile_mode)
        return self._member_moments

    def __call__(self, batch, mean, std):
        from kerasbrain.intensity import normalize_np

        out = self.model.predict_on_batch(normalize_np(batch, mean, std))
        return out[0] if isinstance(out, (list, tuple)) else out

    def volume_predictor(self, window, overlap: float, batch_size: int, mirror: bool, blend: str = "auto",
                         moments: bool = False):
        """A compiled whole-volume predictor, or None where blending on the host is the faster choice.

        blend "auto" blends on the device whenever the model runs under XLA (always on JAX, on a
        GPU with TensorFlow); TensorFlow's plain graph on a CPU keeps the host path, which measured
        faster there. "device" and "host" force one.
        """
        if blend not in BLEND_MODES:
            raise ValueError(f"blend must be one of {BLEND_MODES}. Received: blend={blend!r}")
        if blend == "host" or (blend == "auto" and not self.jit_compile):
            return None
        key = (tuple(window), overlap, batch_size, mirror, moments)
        if key not in self._volume:
            from kerasbrain.inference.device_window import DeviceSlidingWindow

            self._volume[key] = DeviceSlidingWindow(self.model, window, overlap, batch_size, mirror, self.jit_compile,
                                                    moments)
        return self._volume[key]


def predictor(model: keras.Model, compile_mode: str = "auto") -> LocalPredictor:
    """The local window predictor of `model` (see `LocalPredictor`)."""
    return LocalPredictor(model, compile_mode)
