"""REST body parsing and response formatting against TF Serving's documented JSON forms."""

import base64

import numpy as np
import pytest

from kerasbrain.serving.errors import ServingError
from kerasbrain.serving.rest_json import format_predict_response, parse_predict_body
from kerasbrain.serving.servable import Signature, TensorInfo


def _signature(**inputs):
    return Signature("serving_default", {k: TensorInfo(np.dtype(d), s) for k, (d, s) in inputs.items()}, {}, None)


def test_row_format_single_input_bare_values():
    sig = _signature(x=("float32", (None, 2)))
    arrays, form = parse_predict_body({"instances": [[1, 2], [3, 4]]}, sig)
    assert form == "row" and arrays["x"].dtype == np.float32
    np.testing.assert_array_equal(arrays["x"], [[1, 2], [3, 4]])


def test_row_format_named_inputs():
    sig = _signature(a=("float32", (None,)), b=("int64", (None, 2)))
    arrays, _ = parse_predict_body({"instances": [{"a": 1.5, "b": [1, 2]}, {"a": 2.5, "b": [3, 4]}]}, sig)
    np.testing.assert_array_equal(arrays["a"], [1.5, 2.5])
    assert arrays["b"].dtype == np.int64 and arrays["b"].tolist() == [[1, 2], [3, 4]]


def test_columnar_format_and_b64_strings():
    sig = _signature(png=("object", (None,)))
    raw = b"\x89PNG\r\n"
    arrays, form = parse_predict_body({"inputs": [{"b64": base64.b64encode(raw).decode()}]}, sig)
    assert form == "columnar" and arrays["png"][0] == raw


@pytest.mark.parametrize("body,message", [
    ({"inputs": {"x": [[1.2, 2.0]]}}, "expects integers"),
    ({"inputs": {"x": [[True, False]]}}, "got booleans"),
    ({"inputs": {"x": [{"b64": "AAAA"}]}}, "b64 values are only for string inputs"),
    ({"inputs": {"x": [[1, {"not": "b64"}]]}}, "must be {\"b64\""),
    ({"instances": "abc"}, "non-empty list"),
])
def test_type_errors(body, message):
    with pytest.raises(ServingError, match=message) as info:
        parse_predict_body(body, _signature(x=("int32", (None, 2))))
    assert info.value.http_status == 400


def test_response_forms():
    outputs = {"p": np.array([[0.5, 0.25], [1.0, 0.0]], np.float32), "m": np.array([1, 0], np.uint8)}
    assert format_predict_response(outputs, "columnar") == {"outputs": {"m": [1, 0], "p": [[0.5, 0.25], [1.0, 0.0]]}}
    assert format_predict_response(outputs, "row") == {"predictions": [{"m": 1, "p": [0.5, 0.25]},
                                                                       {"m": 0, "p": [1.0, 0.0]}]}
    single = {"p": np.array([1.0, 2.0], np.float32)}
    assert format_predict_response(single, "row") == {"predictions": [1.0, 2.0]}
    assert format_predict_response(single, "columnar") == {"outputs": [1.0, 2.0]}
