"""The Open Inference Protocol v2 (KServe's; Triton and Seldon MLServer speak it) over the same models.

    GET  /v2                                           server metadata
    GET  /v2/health/live, /v2/health/ready             liveness, readiness (every configured model has a version)
    GET  /v2/models/{m}[/versions/{v}]                 model metadata (the `serving_default` signature)
    GET  /v2/models/{m}[/versions/{v}]/ready           200 when that version answers, 400 otherwise
    POST /v2/models/{m}[/versions/{v}]/infer           JSON tensors, or the binary-data extension

A request picks a signature other than `serving_default` (a volumetric model's `segment_case`)
with the request parameter `signature_name`. The binary-data extension: the body is the JSON header
(its length in the `Inference-Header-Content-Length` header) followed by the raw bytes of each input
that declares `binary_data_size`, in order; outputs come back the same way when asked for
(`"binary_data": true` on an output, or `"binary_data_output": true` on the request).
The gRPC service (`open_inference_grpc.py`) shares `infer` and the metadata here.
"""

from __future__ import annotations

import json
import re

import numpy as np

from kerasbrain.serving.errors import ServingError, invalid, not_found

#: numpy dtype <-> the protocol's datatype names
DATATYPES = {np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "UINT8", np.dtype(np.uint16): "UINT16",
             np.dtype(np.int8): "INT8", np.dtype(np.int16): "INT16", np.dtype(np.int32): "INT32",
             np.dtype(np.int64): "INT64", np.dtype(np.float16): "FP16", np.dtype(np.float32): "FP32",
             np.dtype(np.float64): "FP64", np.dtype(object): "BYTES"}
NUMPY = {name: dtype for dtype, name in DATATYPES.items()}
PLATFORM = "tensorflow_savedmodel"
HEADER_LENGTH = "Inference-Header-Content-Length"
_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<suffix>/ready|/infer)?/?$")


def datatype(dtype) -> str:
    return DATATYPES.get(np.dtype(dtype), "BYTES" if np.dtype(dtype).kind in "OSU" else "FP32")


def _shape(shape) -> list[int]:
    return [-1 if s is None else int(s) for s in shape]


# --- metadata and health (shared with gRPC) ---------------------------------------------------------
def server_metadata() -> dict:
    from kerasbrain import __version__

    return {"name": "kerasbrain", "version": __version__, "extensions": ["binary_tensor_data"]}


def server_ready(manager) -> bool:
    return all(manager.status(name) and any(s.state == "AVAILABLE" for _, s in manager.status(name))
               for name in manager.model_names())


def _version(version) -> int | None:
    if version in (None, ""):
        return None
    if not str(version).isdigit():
        raise invalid(f"model version must be an integer, got {version!r}")
    return int(version)


def model_metadata(manager, name: str, version=None) -> dict:
    servable = manager.resolve(name, _version(version))
    versions = [str(v) for v, s in manager.status(name) if s.state == "AVAILABLE"]
    signature = servable.signature(None)
    return {"name": name, "versions": versions, "platform": PLATFORM,
            "inputs": [{"name": k, "datatype": datatype(t.dtype), "shape": _shape(t.shape)}
                       for k, t in sorted(signature.inputs.items())],
            "outputs": [{"name": k, "datatype": datatype(t.dtype), "shape": _shape(t.shape)}
                        for k, t in sorted(signature.outputs.items())]}


def model_ready(manager, name: str, version=None) -> bool:
    try:
        manager.resolve(name, _version(version))
        return True
    except ServingError:
        return False


# --- inference (shared with gRPC) ------------------------------------------------------------------
def tensor_from_data(name: str, dtype_name: str, shape, data) -> np.ndarray:
    """A protocol tensor (JSON data, flat or nested) as a numpy array of its declared type and shape."""
    if dtype_name not in NUMPY:
        raise invalid(f"input '{name}': unknown datatype {dtype_name!r}; expected one of {sorted(NUMPY)}")
    shape = [int(s) for s in shape]
    if dtype_name == "BYTES":
        flat = [d.encode() if isinstance(d, str) else bytes(d) for d in np.asarray(data, dtype=object).ravel()]
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        try:
            array = np.asarray(data, dtype=NUMPY[dtype_name]).ravel()
        except (TypeError, ValueError) as exc:
            raise invalid(f"input '{name}': data is not {dtype_name} ({exc})") from exc
    if array.size != int(np.prod(shape)):
        raise invalid(f"input '{name}': {array.size} values given for shape {shape}")
    return array.reshape(shape)


def tensor_from_bytes(name: str, dtype_name: str, shape, raw: bytes) -> np.ndarray:
    """A tensor from the binary-data extension (BYTES: each element a 4-byte little-endian length + bytes)."""
    if dtype_name not in NUMPY:
        raise invalid(f"input '{name}': unknown datatype {dtype_name!r}")
    shape = [int(s) for s in shape]
    count = int(np.prod(shape))
    if dtype_name != "BYTES":
        dtype = np.dtype(NUMPY[dtype_name]).newbyteorder("<")
        if len(raw) != count * dtype.itemsize:
            raise invalid(f"input '{name}': {len(raw)} bytes given for shape {shape} of {dtype_name}")
        return np.frombuffer(raw, dtype=dtype).astype(NUMPY[dtype_name]).reshape(shape)
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise invalid(f"input '{name}': truncated BYTES element")
        n = int.from_bytes(raw[at:at + 4], "little")
        items.append(raw[at + 4:at + 4 + n])
        at += 4 + n
    if len(items) != count or at != len(raw):
        raise invalid(f"input '{name}': {len(items)} BYTES elements given for shape {shape}")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


def tensor_bytes(array: np.ndarray) -> bytes:
    """The binary-data encoding of a tensor (row-major, little-endian; BYTES length-prefixed)."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind in "SU":
        return b"".join(len(b).to_bytes(4, "little") + b for b in
                        (x if isinstance(x, bytes) else str(x).encode() for x in array.ravel()))
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def infer(manager, name: str, version, decode, outputs: list[str] | None, parameters: dict | None = None):
    """Run one inference; returns (servable, {output name: array}) with only the asked outputs.

    `decode()` gives the input arrays; it runs once the request holds its slot (`Servable.admission`).
    """
    servable = manager.resolve(name, _version(version))
    signature_name = (parameters or {}).get("signature_name")
    if signature_name is not None and not isinstance(signature_name, str):
        raise invalid("parameter 'signature_name' must be a string")
    signature = servable.signature(signature_name)
    with servable.admission(signature.name):
        return servable, servable.predict(signature.name, _coerced(decode(), signature), outputs or None,
                                          admitted=True)


def _coerced(inputs: dict[str, np.ndarray], signature) -> dict[str, np.ndarray]:
    """Inputs in the signature's dtypes (BYTES as object arrays); a wrong type is INVALID_ARGUMENT."""
    coerced = {}
    for key, value in inputs.items():
        info = signature.inputs.get(key)
        if info is None:
            raise invalid(f"unknown input '{key}'; the signature '{signature.name}' expects {sorted(signature.inputs)}")
        if info.dtype == np.dtype(object):
            coerced[key] = value if value.dtype == object else value.astype(object)
        elif value.dtype != info.dtype:
            raise invalid(f"input '{key}' must be {datatype(info.dtype)}; got {datatype(value.dtype)}")
        else:
            coerced[key] = value
    return coerced


# --- REST binding -----------------------------------------------------------------------------------
def _json(status: int, payload) -> tuple[int, bytes, dict]:
    return status, json.dumps(payload, separators=(",", ":")).encode(), {"Content-Type": "application/json"}


def rest_get(manager, path: str) -> tuple[int, bytes, dict]:
    """(status, body, headers) of a GET under /v2."""
    if path.rstrip("/") == "/v2":
        return _json(200, server_metadata())
    if path.rstrip("/") == "/v2/health/live":
        return _json(200, {"live": True})
    if path.rstrip("/") == "/v2/health/ready":
        ready = server_ready(manager)
        return _json(200 if ready else 400, {"ready": ready})
    match = _PATH.match(path)
    if not match or match["suffix"] == "/infer":
        raise not_found(f"no such endpoint: GET {path}")
    if match["suffix"] == "/ready":
        ready = model_ready(manager, match["name"], match["version"])
        return _json(200 if ready else 400, {"name": match["name"], "ready": ready})
    return _json(200, model_metadata(manager, match["name"], match["version"]))


def _split_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    size = len(body)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError as exc:
            raise invalid(f"invalid {HEADER_LENGTH} {header_length!r}") from exc
        if not 0 < size <= len(body):
            raise invalid(f"{HEADER_LENGTH} {size} does not fit a body of {len(body)} bytes")
    try:
        request = json.loads(body[:size])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(f"the inference request is not valid JSON ({exc})") from exc
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise invalid("the inference request must be a JSON object with a list of 'inputs'")
    return request, body[size:]


def rest_infer(manager, path: str, body: bytes, header_length: str | None) -> tuple[int, bytes, dict]:
    """(status, body, headers) of POST /v2/models/{m}[/versions/{v}]/infer."""
    match = _PATH.match(path)
    if not match or match["suffix"] != "/infer":
        raise not_found(f"no such endpoint: POST {path}")
    request, binary = _split_body(body, header_length)

    def decode():
        inputs, at = {}, 0
        for entry in request["inputs"]:
            if not isinstance(entry, dict) or not {"name", "datatype", "shape"} <= set(entry):
                raise invalid("each input needs 'name', 'datatype' and 'shape'")
            size = (entry.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                if at + int(size) > len(binary):
                    raise invalid(f"input '{entry['name']}': binary_data_size {size} runs past the body")
                inputs[entry["name"]] = tensor_from_bytes(entry["name"], entry["datatype"], entry["shape"],
                                                          binary[at:at + int(size)])
                at += int(size)
            elif "data" in entry:
                inputs[entry["name"]] = tensor_from_data(entry["name"], entry["datatype"], entry["shape"],
                                                         entry["data"])
            else:
                raise invalid(f"input '{entry['name']}' has neither 'data' nor binary_data_size")
        return inputs

    parameters = request.get("parameters") or {}
    asked = request.get("outputs") or []
    names = [o["name"] for o in asked if isinstance(o, dict) and "name" in o]
    servable, outputs = infer(manager, match["name"], match["version"], decode, names, parameters)
    binary_all = bool(parameters.get("binary_data_output"))
    binary_of = {o["name"]: (o.get("parameters") or {}).get("binary_data", binary_all) for o in asked
                 if isinstance(o, dict)}
    entries, tail = [], []
    for key in names or sorted(outputs):
        array = outputs[key]
        entry = {"name": key, "datatype": datatype(array.dtype), "shape": list(array.shape)}
        if binary_of.get(key, binary_all):
            raw = tensor_bytes(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            entry["data"] = ([x.decode(errors="replace") if isinstance(x, bytes) else x for x in array.ravel()]
                             if array.dtype == object else array.ravel().tolist())
        entries.append(entry)
    response = {"model_name": match["name"], "model_version": str(servable.version), "outputs": entries}
    if "id" in request:
        response["id"] = request["id"]
    header = json.dumps(response, separators=(",", ":")).encode()
    if not tail:
        return 200, header, {"Content-Type": "application/json"}
    return 200, header + b"".join(tail), {"Content-Type": "application/octet-stream",
                                          HEADER_LENGTH: str(len(header))}
