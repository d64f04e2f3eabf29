"""TF Serving's REST JSON for :predict: row ("instances") and columnar ("inputs") requests, {"b64": ...} bytes.

The codec alone, with no HTTP in it (`rest.py` serves it): request JSON to input arrays in the
signature's dtypes, output arrays back to JSON in the request's form.
"""

from __future__ import annotations

import base64

import numpy as np

from kerasbrain.serving.errors import invalid
from kerasbrain.serving.servable import coerce


def decode_b64(value):
    """Replace {"b64": "..."} objects (TF Serving's binary encoding) by bytes, recursively."""
    if isinstance(value, dict):
        if set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError as exc:
                raise invalid(f"invalid base64 value ({exc})") from exc
        raise invalid("a JSON object inside a tensor value must be {\"b64\": \"...\"}")
    if isinstance(value, list):
        return [decode_b64(v) for v in value]
    return value


def _has_bytes(value) -> bool:
    if isinstance(value, bytes):
        return True
    return isinstance(value, list) and any(_has_bytes(v) for v in value)


def _to_array(name, value, info, b64: bool = True):
    if not b64:  # the body has no "b64" key anywhere: skip walking large nested lists
        return coerce(name, value, info)
    value = decode_b64(value)
    if _has_bytes(value) and info.dtype.kind not in "OSU":
        raise invalid(f"input '{name}' is {info.dtype.name}; b64 values are only for string inputs")
    return coerce(name, value, info)


def parse_predict_body(body: dict, signature, b64: bool = True) -> tuple[dict[str, np.ndarray], str]:
    """Request JSON -> input arrays and "row" / "columnar" (`b64=False`: the body has no b64 values)."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise invalid(f"unknown request field(s) {unknown}; expected signature_name and instances or inputs")
    if ("instances" in body) == ("inputs" in body):
        raise invalid("the request must contain exactly one of 'instances' (row format) or 'inputs' (columnar)")
    names = sorted(signature.inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid("'instances' must be a non-empty list")
        if len(names) == 1 and not all(isinstance(i, dict) and set(i) == {names[0]} for i in instances):
            columns = {names[0]: instances}
        else:
            for i, instance in enumerate(instances):
                if not isinstance(instance, dict):
                    raise invalid(f"instance {i} must be an object with the inputs {names}")
                if set(instance) != set(names):
                    raise invalid(f"instance {i} has inputs {sorted(instance)}; the signature expects {names}")
            columns = {n: [inst[n] for inst in instances] for n in names}
        return {n: _to_array(n, v, signature.inputs[n], b64) for n, v in columns.items()}, "row"
    inputs = body["inputs"]
    if len(names) == 1 and not (isinstance(inputs, dict) and set(inputs) == {names[0]}):
        inputs = {names[0]: inputs}  # a single input may be given bare
    if not isinstance(inputs, dict):
        raise invalid(f"'inputs' must be an object with the inputs {names}")
    arrays = {}
    for n, v in inputs.items():
        if n not in signature.inputs:
            raise invalid(f"unknown input '{n}'; the signature expects {names}")
        arrays[n] = _to_array(n, v, signature.inputs[n], b64)
    return arrays, "columnar"


def json_value(array: np.ndarray):
    array = np.asarray(array, dtype=object) if isinstance(array, bytes) else array  # items of a string array
    if array.dtype.kind in "OS":
        return [json_value(a) for a in array] if array.ndim else (
            {"b64": base64.b64encode(array.item()).decode()} if isinstance(array.item(), bytes) else array.item())
    return array.tolist()


def format_predict_response(outputs: dict[str, np.ndarray], form: str) -> dict:
    names = sorted(outputs)
    if form == "columnar":
        if len(names) == 1:
            return {"outputs": json_value(outputs[names[0]])}
        return {"outputs": {n: json_value(outputs[n]) for n in names}}
    rows = len(next(iter(outputs.values())))
    if len(names) == 1:
        return {"predictions": json_value(outputs[names[0]])}
    return {"predictions": [{n: json_value(outputs[n][i]) for n in names} for i in range(rows)]}
