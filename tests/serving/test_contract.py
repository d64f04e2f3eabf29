"""Contract tests of the TF Serving protocol: kerasbrain's embedded server, or a real TF Serving.

By default the suite exports a tiny 3-D U-Net, writes a models.config and starts `kerasbrain
serve`'s server on free loopback ports. To run the same tests against `tensorflow_model_server`:

    KERASBRAIN_CONTRACT_DIR=/srv/contract python -c "from tests.serving.test_contract import prepare; prepare()"
    tensorflow_model_server --port=8500 --rest_api_port=8501 \
        --model_config_file=/srv/contract/models.config --model_config_file_poll_wait_seconds=1 \
        --file_system_poll_wait_seconds=1 --enable_batching \
        --batching_parameters_file=/srv/contract/batching.config &
    KERASBRAIN_CONTRACT_DIR=/srv/contract KERASBRAIN_CONTRACT_REST=http://localhost:8501 \
        KERASBRAIN_CONTRACT_GRPC=localhost:8500 python -m pytest tests/serving/test_contract.py
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from kerasbrain.data.labels import regions_to_labels
from kerasbrain.export.saved_model import export_version
from kerasbrain.intensity import normalize_np
from kerasbrain.models.unet import UNet
from kerasbrain.serving.client import GrpcClient, RestClient, ServingClientError

MODEL = "kb_contract"
MAX_BODY = 2 * 1024**2
BATCHING = "max_batch_size { value: 4 }\nbatch_timeout_micros { value: 2000 }\n" \
           "max_enqueued_batches { value: 8 }\nnum_batch_threads { value: 2 }\n"


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return UNet(base_filters=4, depth=2)


def prepare(directory: str | os.PathLike | None = None) -> Path:
    """Write version 1, models.config (latest 2 versions, label stable = 1) and batching.config."""
    root = Path(directory or os.environ["KERASBRAIN_CONTRACT_DIR"])
    if not (root / MODEL / "1").exists():
        export_version(_model(1), MODEL, root, version=1)
    (root / "models.config").write_text(
        "model_config_list {\n  config {\n"
        f"    name: '{MODEL}'\n    base_path: '{(root / MODEL).resolve()}'\n    model_platform: 'tensorflow'\n"
        "    model_version_policy { latest { num_versions: 2 } }\n"
        "    version_labels { key: 'stable' value: 1 }\n  }\n}\n")
    (root / "batching.config").write_text(BATCHING)
    return root


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """(rest URL, grpc target, contract dir) of the server under test."""
    external = os.environ.get("KERASBRAIN_CONTRACT_REST")
    if external:
        root = prepare()
        yield external.rstrip("/"), os.environ["KERASBRAIN_CONTRACT_GRPC"], root
        return
    from kerasbrain.serving.server import ServerOptions, build_server

    root = prepare(tmp_path_factory.mktemp("contract"))
    server = build_server(model_config_file=root / "models.config", batching_config=root / "batching.config",
                          options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0.5, max_body_bytes=MAX_BODY))
    server.start()
    yield f"http://127.0.0.1:{server.rest_port}", f"127.0.0.1:{server.grpc_port}", root
    server.stop()


@pytest.fixture(scope="module")
def reference():
    return _model(1)


def _inputs(batch=2, size=8, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(500, 100, size=(batch, size, size, size, 4)).astype(np.float32)
    image[:, :, :2] = 0
    mean = rng.normal(500, 10, size=(batch, 4)).astype(np.float32)
    std = rng.uniform(80, 120, size=(batch, 4)).astype(np.float32)
    return {"image": image, "channel_mean": mean, "channel_std": std}


def _expected(model, inputs):
    probs = np.concatenate([model.predict_on_batch(normalize_np(inputs["image"][i:i + 1], inputs["channel_mean"][i],
                                                                inputs["channel_std"][i]))
                            for i in range(len(inputs["image"]))])
    return probs, regions_to_labels(probs >= 0.5)


def raw_http(rest: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One HTTP request with full control over the bytes sent; returns (status, parsed JSON or text)."""
    url = urlparse(rest)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.putrequest(method, path)
        headers = dict(headers or {})
        if body is not None and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body is not None:
            conn.send(body)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data.decode(errors="replace")
    finally:
        conn.close()


# ---- predictions equal in-process Keras ---------------------------------------------------------

def test_rest_columnar_prediction_equals_keras(target, reference):
    rest, _, _ = target
    inputs = _inputs()
    out = RestClient(rest, MODEL).predict(inputs)
    probs, labels = _expected(reference, inputs)
    assert np.abs(out["probabilities"] - probs).max() <= 1e-5
    np.testing.assert_array_equal(out["mask"], labels)


def test_rest_row_format_equals_keras(target, reference):
    rest, _, _ = target
    inputs = _inputs(batch=2, seed=1)
    instances = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(2)]
    status, body = raw_http(rest, "POST", f"/v1/models/{MODEL}:predict", json.dumps({"instances": instances}).encode())
    assert status == 200, body
    probs, labels = _expected(reference, inputs)
    got = np.array([p["probabilities"] for p in body["predictions"]], dtype=np.float32)
    assert np.abs(got - probs).max() <= 1e-5
    np.testing.assert_array_equal(np.array([p["mask"] for p in body["predictions"]]), labels)


def test_grpc_prediction_equals_keras(target, reference):
    _, grpc_target, _ = target
    inputs = _inputs(batch=3, size=12, seed=2)
    out = GrpcClient(grpc_target, MODEL).predict(inputs)
    probs, labels = _expected(reference, inputs)
    assert out["probabilities"].dtype == np.float32 and out["mask"].dtype == np.uint8
    assert np.abs(out["probabilities"] - probs).max() <= 1e-5
    np.testing.assert_array_equal(out["mask"], labels)
    filtered = GrpcClient(grpc_target, MODEL, label="stable").predict(inputs, output_filter=["mask"])
    assert list(filtered) == ["mask"]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_whole_case_through_the_server_equals_local_prediction(target, reference, msd_dir, protocol):
    """A phantom case predicted with 3 windows per request over several requests, as `predict --server` does."""
    from kerasbrain.data.layouts import discover, load_case
    from kerasbrain.inference.predict_volume import InferenceConfig, predict_case
    from kerasbrain.runtime import predictor
    from kerasbrain.serving.remote_predictor import RemoteWindowPredictor

    rest, grpc_target, _ = target
    client = RestClient(rest, MODEL) if protocol == "rest" else GrpcClient(grpc_target, MODEL)
    remote = RemoteWindowPredictor(client)
    sizes = []
    case = load_case(discover(msd_dir).labelled()[0])
    cfg = InferenceConfig(window=(16, 16, 16), overlap=0.5, batch_size=3)
    labels, probs = predict_case(case, lambda b, m, s: sizes.append(len(b)) or remote(b, m, s), 3, cfg)
    local_labels, local_probs = predict_case(case, predictor(reference, "graph"), 3, cfg)
    assert max(sizes) == 3 and len(sizes) > 2
    assert np.abs(probs - local_probs).max() <= 1e-4
    assert (labels != local_labels).mean() < 1e-4  # a voxel at exactly 0.5 may round either way


def test_concurrent_requests_each_get_their_own_answer(target, reference):
    """12 requests from 8 threads against the batching server: each answer is its own request's.

    That requests really are merged into batches is shown on the batcher itself
    (tests/serving/test_batching.py); this test holds against an external TF Serving too.
    """
    from concurrent.futures import ThreadPoolExecutor

    rest, grpc_target, _ = target
    requests = [_inputs(batch=1, seed=10 + i) for i in range(12)]
    client = GrpcClient(grpc_target, MODEL)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client.predict, requests))
    for inputs, out in zip(requests, results):
        assert np.abs(out["probabilities"] - _expected(reference, inputs)[0]).max() <= 1e-5


# ---- metadata and status ------------------------------------------------------------------------

def test_rest_metadata_matches_signature(target):
    rest, _, _ = target
    meta = RestClient(rest, MODEL, version=1).metadata()
    assert meta["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sorted(sig["inputs"]) == ["channel_mean", "channel_std", "image"]
    assert sorted(sig["outputs"]) == ["mask", "probabilities"]
    assert sig["inputs"]["image"]["dtype"] == "DT_FLOAT" and sig["outputs"]["mask"]["dtype"] == "DT_UINT8"
    dims = [int(d["size"]) for d in sig["inputs"]["image"]["tensor_shape"]["dim"]]
    assert dims == [-1, -1, -1, -1, 4]


def test_grpc_metadata_and_status(target):
    _, grpc_target, _ = target
    client = GrpcClient(grpc_target, MODEL, version=1)
    response, sig_map = client.metadata()
    assert response.model_spec.version.value == 1
    assert set(sig_map.signature_def["serving_default"].inputs) == {"image", "channel_mean", "channel_std"}
    status = client.status()
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]  # AVAILABLE


def test_rest_status_and_label(target):
    rest, _, _ = target
    assert RestClient(rest, MODEL).status()["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = raw_http(rest, "GET", f"/v1/models/{MODEL}/labels/stable")
    assert status == 200 and body["model_version_status"][0]["version"] == "1"


# ---- malformed requests: each gets the right 4xx and the server keeps answering ---------------

def _good_columnar(**overrides):
    inputs = {k: v.tolist() for k, v in _inputs(batch=1).items()}
    inputs.update(overrides)
    return {"inputs": inputs}


def _image(shape, value=1.0):
    return np.full(shape, value, np.float32).tolist()


P = f"/v1/models/{MODEL}:predict"
MALFORMED = [
    ("invalid JSON", "POST", P, b"{not json", 400),
    ("JSON array body", "POST", P, b"[1, 2, 3]", 400),
    ("empty body", "POST", P, b"", 400),
    ("both instances and inputs", "POST", P, {"instances": [1], "inputs": {}}, 400),
    ("neither instances nor inputs", "POST", P, {"signature_name": "serving_default"}, 400),
    ("unknown request field", "POST", P, {"inputs": {}, "extra": 1}, 400),
    ("empty instances", "POST", P, {"instances": []}, 400),
    ("instance missing an input", "POST", P, {"instances": [{"image": _image((4, 4, 4, 4))}]}, 400),
    ("string values for a float input", "POST", P, _good_columnar(image=[[[[["a"] * 4] * 4] * 4] * 4]), 400),
    ("ragged image", "POST", P, _good_columnar(image=[[[[[1.0] * 4] * 4] * 4, [[[1.0] * 4] * 3] * 4]]), 400),
    ("wrong rank", "POST", P, _good_columnar(image=_image((1, 8, 8, 4))), 400),
    ("wrong channel count", "POST", P, _good_columnar(image=_image((1, 8, 8, 8, 3))), 400),
    ("missing input", "POST", P, {"inputs": {"image": _image((1, 8, 8, 8, 4)), "channel_mean": [[0] * 4]}}, 400),
    ("unknown input", "POST", P, _good_columnar(weights=[1.0]), 400),
    ("batch sizes disagree", "POST", P, _good_columnar(channel_mean=[[0.0] * 4] * 2), 400),
    ("side not a multiple of 2**depth", "POST", P, _good_columnar(image=_image((1, 6, 8, 8, 4))), 400),
    ("b64 for a float input", "POST", P, _good_columnar(image={"b64": "AAAA"}), 400),
    ("signature_name not a string", "POST", P, {"signature_name": 3, **_good_columnar()}, 400),
    ("unknown signature", "POST", P, {"signature_name": "classify_me", **_good_columnar()}, 400),
    ("batch above max_batch_size", "POST", P, _good_columnar(image=_image((5, 4, 4, 4, 4)),
                                                             channel_mean=[[0.0] * 4] * 5,
                                                             channel_std=[[1.0] * 4] * 5), 400),
    ("unknown model", "POST", "/v1/models/no_such_model:predict", _good_columnar(), 404),
    ("unknown version", "POST", f"/v1/models/{MODEL}/versions/99:predict", _good_columnar(), 404),
    ("unknown label", "POST", f"/v1/models/{MODEL}/labels/nightly:predict", _good_columnar(), 404),
    ("non-integer version", "GET", f"/v1/models/{MODEL}/versions/one", None, 400),
    ("unknown path", "GET", "/v2/everything", None, 404),
    ("GET with a body", "GET", f"/v1/models/{MODEL}", b'{"a": 1}', 400),
    ("GET on :predict", "GET", P, None, 405),
    ("classify is not offered", "POST", f"/v1/models/{MODEL}:classify", {"examples": []}, 501),
    ("PUT", "PUT", P, b"{}", 405),
]


def _raw_json(inputs: dict) -> bytes:
    """JSON with the NaN / Infinity tokens Python's encoder writes (and TF Serving's parser accepts)."""
    return json.dumps({"inputs": inputs}, allow_nan=True).encode()


_good = {k: v.tolist() for k, v in _inputs(batch=1).items()}
#: Well-formed but wrong values: kerasbrain's server refuses them before the model runs (a stock TF
#: Serving would compute NaN masks), so these run against the embedded server only.
WRONG_VALUES = [
    ("NaN voxel", {**_good, "image": np.where(np.arange(4) == 1, np.nan, 1.0) * np.ones((1, 8, 8, 8, 4))}),
    ("infinite mean", {**_good, "channel_mean": [[0.0, float("inf"), 0.0, 0.0]]}),
    ("zero std", {**_good, "channel_std": [[1.0, 0.0, 1.0, 1.0]]}),
    ("negative std", {**_good, "channel_std": [[1.0, 1.0, -2.0, 1.0]]}),
]


@pytest.mark.parametrize("name,inputs", WRONG_VALUES, ids=[w[0] for w in WRONG_VALUES])
def test_wrong_values_are_refused_over_rest_and_grpc(target, name, inputs):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    if os.environ.get("KERASBRAIN_CONTRACT_REST"):
        pytest.skip("value checks are kerasbrain's server's own")
    rest, grpc_target, _ = target
    inputs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    status, payload = raw_http(rest, "POST", P, _raw_json({k: v.tolist() for k, v in inputs.items()}))
    assert status == 400 and ("NaN or infinite" in payload["error"] or "must be positive" in payload["error"]), payload
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(grpc_target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert RestClient(rest, MODEL).status()["model_version_status"][0]["state"] == "AVAILABLE"


def test_without_batching_a_batch_mismatch_or_bad_side_is_refused_too(target):
    from kerasbrain.serving.errors import ServingError
    from kerasbrain.serving.servable import Servable

    _, _, root = target
    servable = Servable(MODEL, 1, root / MODEL / "1")  # no batcher: the signature alone would broadcast
    good = _inputs(batch=1)
    assert servable.predict(None, good)["probabilities"].shape[0] == 1
    for inputs, message in (({**good, "channel_std": np.ones((2, 4), np.float32)}, "disagree on the batch size"),
                            ({**good, "image": np.ones((1, 6, 8, 8, 4), np.float32)}, "multiples of 4")):
        with pytest.raises(ServingError, match=message):
            servable.predict(None, inputs)
    servable.close()


@pytest.mark.parametrize("name,method,path,body,status", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_rest_request(target, name, method, path, body, status):
    rest, _, _ = target
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    got, payload = raw_http(rest, method, path, data)
    assert got == status, payload
    assert isinstance(payload, dict) and payload.get("error"), payload
    assert RestClient(rest, MODEL).status()["model_version_status"][0]["state"] == "AVAILABLE"


def test_oversized_body_is_refused_without_reading_it(target):
    rest, _, _ = target
    if os.environ.get("KERASBRAIN_CONTRACT_REST"):
        pytest.skip("the body limit of an external server is its own setting")
    status, payload = raw_http(rest, "POST", P, b"x" * 16, headers={"Content-Length": str(MAX_BODY + 1)})
    assert status == 413 and "exceeds the limit" in payload["error"]
    assert RestClient(rest, MODEL).status()


def test_clients_that_stall_or_hang_up_block_no_one(target, reference, capfd):
    rest, _, _ = target
    url = urlparse(rest)
    stalled = socket.create_connection((url.hostname, url.port), timeout=10)
    stalled.sendall(b"POST " + P.encode() + b" HTTP/1.1\r\nHost: x\r\n")  # slow-loris: headers never end
    for _ in range(3):  # announce a large body, send a little of it, hang up
        with socket.create_connection((url.hostname, url.port), timeout=10) as gone:
            gone.sendall(b"POST " + P.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n{\"in")
    inputs = _inputs(batch=1, seed=5)
    start = time.monotonic()
    probs = np.asarray(RestClient(rest, MODEL).predict(inputs)["probabilities"])
    assert time.monotonic() - start < 30  # answered while the stalled connection is still open
    np.testing.assert_allclose(probs, _expected(reference, inputs)[0], atol=1e-4)
    stalled.close()
    time.sleep(0.5)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("case,code", [
    ("unknown model", grpc.StatusCode.NOT_FOUND),
    ("wrong dtype", grpc.StatusCode.INVALID_ARGUMENT),
    ("missing input", grpc.StatusCode.INVALID_ARGUMENT),
    ("unknown signature", grpc.StatusCode.INVALID_ARGUMENT),
    ("unknown label", grpc.StatusCode.NOT_FOUND),
    ("unknown output filter", grpc.StatusCode.INVALID_ARGUMENT),
    ("wrong rank", grpc.StatusCode.INVALID_ARGUMENT),
    ("side not a multiple of 2**depth", grpc.StatusCode.INVALID_ARGUMENT),
])
def test_malformed_grpc_request(target, case, code):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    _, grpc_target, _ = target
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(grpc_target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "nope" if case == "unknown model" else MODEL
    if case == "unknown label":
        request.model_spec.version_label = "nightly"
    if case == "unknown signature":
        request.model_spec.signature_name = "nope"
    for key, value in _inputs(batch=1).items():
        if case == "missing input" and key == "channel_std":
            continue
        if case == "wrong dtype" and key == "image":
            value = value.astype(np.float64)
        if case == "wrong rank" and key == "image":
            value = value[:, 0]
        if case == "side not a multiple of 2**depth" and key == "image":
            value = value[:, :6]
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    if case == "unknown output filter":
        request.output_filter.append("logits")
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=60)
    assert info.value.code() == code
    bad_meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["everything"])
    bad_meta.model_spec.name = MODEL
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(bad_meta, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_raises_clear_errors(target):
    rest, grpc_target, _ = target
    with pytest.raises(ServingClientError) as info:
        RestClient(rest, "no_such_model").status()
    assert info.value.status == 404
    with pytest.raises(ServingClientError) as info:
        GrpcClient(grpc_target, "no_such_model").status()
    assert info.value.status == "NOT_FOUND"


# ---- versions appear without a restart (last: it changes what is served) -------------------------

def _wait(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _served_versions(rest):
    body = RestClient(rest, MODEL).status()
    return sorted(int(s["version"]) for s in body["model_version_status"] if s["state"] == "AVAILABLE")


def test_new_versions_are_served_and_old_ones_retired_per_policy(target):
    rest, grpc_target, root = target
    (root / MODEL / "junk").mkdir(exist_ok=True)  # not a version: ignored
    export_version(_model(2), MODEL, root, version=2)
    assert _wait(lambda: _served_versions(rest) == [1, 2]), _served_versions(rest)
    inputs = _inputs(batch=1, seed=5)
    newest = GrpcClient(grpc_target, MODEL).predict(inputs)["probabilities"]
    assert np.abs(newest - _expected(_model(2), inputs)[0]).max() <= 1e-5  # unversioned requests get the newest
    # a broken version leaves what is serving in place
    broken = root / MODEL / "3"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")

    def states():
        return {int(s["version"]): s["state"] for s in RestClient(rest, MODEL).status()["model_version_status"]}

    assert _wait(lambda: states().get(3) == "END"), states()  # tried, failed, and said so
    assert _served_versions(rest) == [1, 2]
    status, _ = raw_http(rest, "GET", f"/v1/models/{MODEL}/versions/2")
    assert status == 200
    # latest-2 policy: once version 4 is available, version 2 stays and 1 is unloaded
    export_version(_model(4), MODEL, root, version=4)
    assert _wait(lambda: 4 in _served_versions(rest) and 1 not in _served_versions(rest)), _served_versions(rest)
    status, payload = raw_http(rest, "POST", f"/v1/models/{MODEL}/versions/1:predict",
                               json.dumps(_good_columnar()).encode())
    assert status == 404, payload
