"""One loaded SavedModel version: its signatures, input checking and (optionally batched) execution."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasbrain.serving.batching import Batcher, BatchingOptions
from kerasbrain.serving.errors import ServingError, invalid

log = logging.getLogger("kerasbrain.serving")
DEFAULT_SIGNATURE = "serving_default"
WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"


@dataclass(frozen=True)
class TensorInfo:
    dtype: np.dtype
    shape: tuple  # None for unknown dimensions

    def check(self, name: str, value: np.ndarray) -> None:
        if value.ndim != len(self.shape):
            raise invalid(f"input '{name}' must have rank {len(self.shape)} (shape {_shape(self.shape)}); "
                          f"got shape {list(value.shape)}")
        for i, (want, got) in enumerate(zip(self.shape, value.shape)):
            if want is not None and want != got:
                raise invalid(f"input '{name}' dimension {i} must be {want}; got shape {list(value.shape)}")


def _shape(shape) -> list:
    return [-1 if s is None else s for s in shape]


@dataclass
class Signature:
    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    function: object


class Servable:
    """A SavedModel version ready to answer requests."""

    def __init__(self, name: str, version: int, path: str | Path, batching: BatchingOptions | None = None,
                 case_admission=None):
        self.name, self.version, self.path = name, int(version), Path(path)
        self.case_admission = case_admission  # bounds whole-case requests running at once (admission.py)
        self._model = tf.saved_model.load(str(self.path))
        self.signatures: dict[str, Signature] = {}
        for key, fn in self._model.signatures.items():
            spec = fn.structured_input_signature[1]
            inputs = {k: TensorInfo(np.dtype(s.dtype.as_numpy_dtype), tuple(s.shape.as_list())) for k, s in spec.items()}
            outputs = {k: TensorInfo(np.dtype(s.dtype.as_numpy_dtype), tuple(s.shape.as_list()))
                       for k, s in fn.structured_outputs.items()}
            self.signatures[key] = Signature(key, inputs, outputs, fn)
        self.signature_def_map = self._read_signature_defs()
        self.contract = _read_contract(self.path)
        self._batchers: dict[str, Batcher] = {}
        if batching is not None:
            for key in self.signatures:
                self._batchers[key] = Batcher(lambda x, k=key: self._run(k, x), batching, name=f"{name}-v{version}")

    def _read_signature_defs(self):
        """The SignatureDefMap that TF Serving returns as metadata, read from saved_model.pb."""
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow_serving.apis import get_model_metadata_pb2

        saved = saved_model_pb2.SavedModel.FromString((self.path / "saved_model.pb").read_bytes())
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in saved.meta_graphs[0].signature_def.items():
            if key in self.signatures:
                sig_map.signature_def[key].CopyFrom(sig)
        return sig_map

    def signature(self, name: str | None) -> Signature:
        key = name or DEFAULT_SIGNATURE
        if key not in self.signatures:
            raise invalid(f'Serving signature key "{key}" not found.')
        return self.signatures[key]

    def _run(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fn = self.signatures[key].function
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError, ValueError, TypeError) as exc:
            # DataLoss: bytes the graph could not decompress, the request's fault like a bad shape
            raise invalid(_reason(getattr(exc, "message", None) or str(exc))) from exc
        return {k: v.numpy() for k, v in outputs.items()}

    def admission(self, signature_name: str | None):
        """The slot a request of this signature holds while its inputs are decoded and run: a whole-case
        slot (`admission.py`) for whole-case signatures, nothing for the others. Taking it before
        decoding keeps refused and waiting requests from holding decoded copies of their cases."""
        key = signature_name or DEFAULT_SIGNATURE
        if self.case_admission is not None and key in self.contract.get("whole_case", ()):
            return _releasing(self.case_admission.admit())
        return contextlib.nullcontext()

    def predict(self, signature_name: str | None, inputs: dict[str, np.ndarray],
                output_filter: list[str] | None = None, admitted: bool = False) -> dict[str, np.ndarray]:
        """Check `inputs` against the signature and run it; errors are ServingError.

        `admitted`: the caller already holds `admission(signature_name)`."""
        sig = self.signature(signature_name)
        missing = sorted(set(sig.inputs) - set(inputs))
        if missing:
            raise invalid(f"missing input(s) {missing}; signature '{sig.name}' expects {sorted(sig.inputs)}")
        extra = sorted(set(inputs) - set(sig.inputs))
        if extra:
            raise invalid(f"unknown input(s) {extra}; signature '{sig.name}' expects {sorted(sig.inputs)}")
        for key, value in inputs.items():
            sig.inputs[key].check(key, value)
        check_values(inputs, self.contract if sig.name == DEFAULT_SIGNATURE else {})  # the window contract
        if output_filter:
            unknown = sorted(set(output_filter) - set(sig.outputs))
            if unknown:
                raise invalid(f"output_filter names unknown output(s) {unknown}; outputs are {sorted(sig.outputs)}")
        batcher = self._batchers.get(sig.name)
        if admitted:
            outputs = batcher.submit(inputs) if batcher is not None else self._run(sig.name, inputs)
        else:
            with self.admission(sig.name):
                outputs = batcher.submit(inputs) if batcher is not None else self._run(sig.name, inputs)
        if output_filter:
            outputs = {k: outputs[k] for k in output_filter}
        return outputs

    def warm_up(self) -> int:
        """Replay `assets.extra/tf_serving_warmup_requests`, as TF Serving does; returns how many ran."""
        path = self.path / WARMUP
        if not path.exists():
            return 0
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        for record in tf.data.TFRecordDataset(str(path)):
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if entry.HasField("predict_log"):
                request = entry.predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                self.predict(request.model_spec.signature_name or None, inputs)
                count += 1
        return count

    def close(self):
        for batcher in self._batchers.values():
            batcher.close()


@contextlib.contextmanager
def _releasing(slot):
    """Hold `slot`; afterwards give a whole case's freed working memory back to the system."""
    with slot:
        yield
    _return_freed_memory()


def _return_freed_memory() -> None:
    """glibc keeps freed heap pages of many threads' arenas; after a whole case that is gigabytes held."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _reason(message: str) -> str:
    """The line of a TensorFlow error that says what is wrong (a graph assertion's own message first)."""
    import re

    asserted = re.search(r"assertion failed: \[([^\]]*)\]", message)
    if asserted:
        return asserted.group(1)[:2000]
    lines = [line.strip() for line in message.strip().splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Graph execution error", "Detected at node",
                                                                     "[[", "File ", "Traceback", "<stack traces"))]
    return (lines or [message.strip()])[0][:2000]


#: Inputs of kerasbrain's volume signature that divide the image: zero or negative is never valid.
POSITIVE_INPUTS = ("channel_std",)


def _read_contract(path: Path) -> dict:
    """What the version's kerasbrain manifest promises about its inputs ({} for a foreign SavedModel)."""
    import json

    manifest = path / "assets.extra" / "kerasbrain.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return {}
    inputs = data.get("inputs") or []
    whole_case = [k for k, v in (data.get("signatures") or {}).items() if "settings" in v or "same_as" in v]
    return {"spatial_input": inputs[0] if inputs else None, "size_divisor": int(data.get("size_divisor") or 1),
            "axis_divisors": [int(d) for d in data.get("axis_divisors") or ()], "whole_case": whole_case}


def check_values(inputs: dict[str, np.ndarray], contract: dict) -> None:
    """Refuse well-formed requests whose values are wrong (INVALID_ARGUMENT), before the model runs.

    Non-finite values; `channel_std` <= 0; inputs that disagree on the batch size (a signature
    would otherwise broadcast one image against two rows of statistics and answer twice); spatial
    sides that are not multiples of the network's divisor, as the version's manifest states it.
    """
    batch = {k: v.shape[0] for k, v in inputs.items() if v.ndim >= 1}
    if len(set(batch.values())) > 1:
        raise invalid("inputs disagree on the batch size: " + ", ".join(f"{k} {n}" for k, n in sorted(batch.items())))
    for key, value in inputs.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise invalid(f"input '{key}' holds NaN or infinite values")
        if key in POSITIVE_INPUTS and (value <= 0).any():
            raise invalid(f"input '{key}' must be positive; got {float(value.min()):g}")
    name, divisor = contract.get("spatial_input"), contract.get("size_divisor", 1)
    if name in inputs and inputs[name].ndim >= 3:
        sides = inputs[name].shape[1:-1]
        divisors = contract.get("axis_divisors") or [divisor] * len(sides)
        if len(divisors) == len(sides) and any(side % d for side, d in zip(sides, divisors)):
            said = divisor if len(set(divisors)) == 1 else divisors
            raise invalid(f"input '{name}' spatial sides {list(sides)} must be multiples of {said}")


def coerce(name: str, value, info: TensorInfo) -> np.ndarray:
    """Convert a JSON value to the signature's dtype; a wrong type or ragged list is INVALID_ARGUMENT."""
    if info.dtype == np.dtype(object) or info.dtype.kind in "SU":
        try:
            return np.asarray(value, dtype=object)
        except ValueError as exc:
            raise invalid(f"input '{name}': ragged or malformed list ({exc})") from exc
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise invalid(f"input '{name}': ragged or malformed list") from exc
    if array.dtype == object or array.dtype.kind in "SUV":
        raise invalid(f"input '{name}' expects {info.dtype.name} values; got non-numeric or ragged data")
    if array.dtype.kind == "b" and info.dtype.kind != "b":
        raise invalid(f"input '{name}' expects {info.dtype.name} values; got booleans")
    if info.dtype.kind in "iu" and array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        raise invalid(f"input '{name}' expects integers ({info.dtype.name}); got fractional values")
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(info.dtype)

