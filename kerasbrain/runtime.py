"""Choosing how Keras compiles and at what precision it computes on the machine at hand.

On CPUs, XLA makes 3-D convolutions 7-8x slower than TensorFlow's plain graph path (measured:
3.4 s vs 26 s for one 4 x 128^3 window of the 5.7 M-parameter U-Net), while on GPUs XLA is the
faster choice. Keras's own "auto" picks XLA on TensorFlow everywhere, so kerasbrain resolves
"auto" itself: XLA on a GPU, the plain graph on a CPU. The JAX backend always compiles with XLA.

Precision: "bf16" builds models under Keras's `mixed_bfloat16` policy (bfloat16 compute, float32
weights; kerasbrain's final activations, losses and metrics stay float32), "fp32" under
`float32`. "auto" picks bf16 on a GPU with bfloat16 tensor cores (compute capability 8.0 or
newer) and, for training only, on a CPU whose instructions compute in bfloat16 natively
(AVX512_BF16 or AMX-BF16) under TensorFlow's oneDNN kernels, where training steps measured 1.1-1.5x
faster (README); fp32 elsewhere (CPUs without those instructions were not measured, so they stay
as they were; XLA on a CPU is slow for 3-D either way). Inference stays fp32 on CPUs: see
`resolve_precision`.
"""

from __future__ import annotations

import contextlib
import functools
import os

import keras

COMPILE_MODES = ("auto", "xla", "graph")
PRECISIONS = ("auto", "fp32", "bf16")
_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


@functools.cache
def has_tensorflow() -> bool:
    """Whether TensorFlow imports here: tf.data and TensorBoard's logs need it, the JAX backend does not
    (a GPU machine may have a CUDA JAX alone)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


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


#: CPU flags (Linux /proc/cpuinfo) of instructions that multiply bfloat16 natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The first processor's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_trains_faster_in_bf16() -> bool:
    """True where bfloat16 training is native and fast: TensorFlow's oneDNN kernels on a CPU with
    AVX512_BF16 or AMX-BF16 (`TF_ENABLE_ONEDNN_OPTS=0` turns oneDNN, and so this, off)."""
    return (keras.backend.backend() == "tensorflow" and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
            and any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS))


def resolve_precision(mode: str = "auto", training: bool = False) -> str:
    """Map a precision mode to a Keras dtype policy name (see the module docstring).

    `training=True` lets "auto" pick bf16 on a CPU with native bfloat16 too; prediction keeps fp32
    there, so served, exported and in-process probabilities agree and calibrations stay valid.
    """
    if mode not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={mode!r}")
    if mode == "auto":
        capability = gpu_compute_capability()
        if capability is not None:
            mode = "bf16" if capability >= 8.0 else "fp32"
        else:
            mode = "bf16" if training and cpu_trains_faster_in_bf16() else "fp32"
    return _POLICIES[mode]


@contextlib.contextmanager
def precision_policy(mode: str = "auto", training: bool = False):
    """Build models inside this block at `mode`'s precision; the global policy is restored afterwards.

    Layers take their dtype policy when they are created, so a model built (or loaded) here keeps
    this precision for its whole life. `training`: see `resolve_precision`. Yields the policy's name.
    """
    previous = keras.config.dtype_policy()
    policy = resolve_precision(mode, training)
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def precision_note(policy: str, mode: str) -> str:
    """The line a trainer prints about the precision it computes in."""
    hint = '; "fp32" turns bfloat16 off' if policy != "float32" else ""
    return f'computing in {policy} ([training] precision = "{mode}"{hint})'


def cpu_backend_note() -> str | None:
    """A line for a 3-D trainer running JAX on CPUs only: XLA runs 3-D convolutions there many times
    slower than TensorFlow's oneDNN kernels (README, "CPU kernels"; the figures:
    bench/results_cpu_2026-12-05/cpu_speed.jsonl), a cost to learn before the first epoch, not after
    hours of it. None elsewhere."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    if jax.default_backend() != "cpu":
        return None
    return ("note: JAX runs 3-D convolutions through XLA, which is slow on CPUs (a default training step "
            "took 55 s against 4.6 s under TensorFlow on 2 cores); KERAS_BACKEND=tensorflow trains faster here")


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
