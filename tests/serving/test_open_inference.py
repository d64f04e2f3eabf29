"""The Open Inference Protocol v2 of `kerasbrain serve`, driven by NVIDIA's unmodified `tritonclient`.

Health, metadata and inference over HTTP (JSON and the binary-data extension) and gRPC, on the
window signature and on the whole-case signature, each equal to the in-process result; errors as
the protocol specifies them.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from kerasbrain.data.labels import regions_to_labels
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.whole_case import case_probabilities
from kerasbrain.intensity import normalize_np
from tests.serving.whole_case_server import serve_with_settings, tiny_unet

MODEL = "kb_oip"
SETTINGS = InferenceConfig(window=(16, 16, 16), overlap=0.5, batch_size=2, mirror=False)


@pytest.fixture(scope="module")
def model():
    return tiny_unet(9)


@pytest.fixture(scope="module")
def clients(model, tmp_path_factory):
    server = serve_with_settings(model, MODEL, tmp_path_factory.mktemp("oip_models"), SETTINGS)
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.rest_port}", network_timeout=120)
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    yield {"http": http, "grpc": grpc}
    http.close()
    grpc.close()
    server.stop()


def _module(protocol):
    return httpclient if protocol == "http" else grpcclient


def _windows(seed=0, batch=3):
    rng = np.random.default_rng(seed)
    image = rng.normal(400, 90, size=(batch, 8, 8, 8, 4)).astype(np.float32)
    image[:, :2] = 0
    mean = rng.normal(400, 10, size=(batch, 4)).astype(np.float32)
    std = rng.uniform(70, 110, size=(batch, 4)).astype(np.float32)
    return {"image": image, "channel_mean": mean, "channel_std": std}


def _infer(client, protocol, inputs, outputs, binary=True, **kwargs):
    module = _module(protocol)
    tensors = []
    for name, value in inputs.items():
        tensor = module.InferInput(name, list(value.shape), "BYTES" if value.dtype == object else
                                   {"float32": "FP32", "int32": "INT32"}[value.dtype.name])
        if protocol == "http":
            tensor.set_data_from_numpy(value, binary_data=binary)
        else:
            tensor.set_data_from_numpy(value)
        tensors.append(tensor)
    asked = [module.InferRequestedOutput(o, binary_data=binary) if protocol == "http" else
             module.InferRequestedOutput(o) for o in outputs]
    return client.infer(MODEL, tensors, outputs=asked, **kwargs)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_health_and_metadata(clients, protocol):
    client = clients[protocol]
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "1")
    assert not client.is_model_ready(MODEL, "7") and not client.is_model_ready("no_such_model")
    server = client.get_server_metadata()
    meta = client.get_model_metadata(MODEL)
    if protocol == "grpc":
        from google.protobuf.json_format import MessageToDict

        server, meta = MessageToDict(server), MessageToDict(meta)
    assert server["name"] == "kerasbrain" and "binary_tensor_data" in server["extensions"]
    assert meta["versions"] == ["1"] and meta["platform"] == "tensorflow_savedmodel"
    shapes = {t["name"]: ([int(s) for s in t["shape"]], t["datatype"]) for t in meta["inputs"]}
    assert shapes == {"image": ([-1, -1, -1, -1, 4], "FP32"), "channel_mean": ([-1, 4], "FP32"),
                      "channel_std": ([-1, 4], "FP32")}
    assert {t["name"]: t["datatype"] for t in meta["outputs"]} == {"probabilities": "FP32", "mask": "UINT8"}


@pytest.mark.parametrize("protocol,binary", [("http", False), ("http", True), ("grpc", True)])
def test_window_inference_equals_keras(clients, model, protocol, binary):
    inputs = _windows()
    result = _infer(clients[protocol], protocol, inputs, ["probabilities", "mask"], binary)
    expected = np.concatenate([model.predict_on_batch(normalize_np(inputs["image"][i:i + 1], inputs["channel_mean"][i],
                                                                   inputs["channel_std"][i])) for i in range(3)])
    assert np.abs(result.as_numpy("probabilities") - expected).max() <= 1e-5
    np.testing.assert_array_equal(result.as_numpy("mask"), regions_to_labels(expected >= 0.5))
    assert result.as_numpy("mask").dtype == np.uint8


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_whole_case_inference_equals_in_process(clients, model, protocol):
    rng = np.random.default_rng(4)
    case = np.zeros((26, 30, 20, 4), np.float32)
    case[2:24, 4:27, 1:19] = rng.normal(300, 70, size=(22, 23, 18, 4))
    result = _infer(clients[protocol], protocol, {"image": case[None]}, ["probabilities", "mask"],
                    parameters={"signature_name": "segment_case"})
    expected = keras.ops.convert_to_numpy(case_probabilities(lambda x: model(x, training=False), case,
                                                             SETTINGS.window, SETTINGS.overlap,
                                                             SETTINGS.batch_size, 3))
    assert result.as_numpy("probabilities").shape == (1, 26, 30, 20, 3)
    assert np.abs(result.as_numpy("probabilities")[0] - expected).max() <= 1e-5
    np.testing.assert_array_equal(result.as_numpy("mask")[0], regions_to_labels(expected >= 0.5))


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_compact_case_over_bytes_tensors(clients, protocol):
    from kerasbrain.export.compressed import encode_case

    case = np.zeros((12, 12, 12, 4), np.float32)
    case[2:10, 2:10, 2:10] = 100
    plain = _infer(clients[protocol], protocol, {"image": case[None]}, ["mask"],
                   parameters={"signature_name": "segment_case"})
    compact = _infer(clients[protocol], protocol, encode_case(case, "int16"), ["mask"],
                     parameters={"signature_name": "segment_case_compressed"})
    np.testing.assert_array_equal(compact.as_numpy("mask"), plain.as_numpy("mask"))


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_errors_as_the_protocol_says(clients, protocol):
    client = clients[protocol]
    inputs = _windows(batch=1)
    cases = [
        (lambda: client.get_model_metadata("no_such_model"), ("404", "NOT_FOUND")),
        (lambda: _infer(client, protocol, {**inputs, "channel_std": -inputs["channel_std"]}, ["mask"]),
         ("400", "INVALID_ARGUMENT")),
        (lambda: _infer(client, protocol, {"image": inputs["image"]}, ["mask"]), ("400", "INVALID_ARGUMENT")),
        (lambda: _infer(client, protocol, inputs, ["mask"], parameters={"signature_name": "nope"}),
         ("400", "INVALID_ARGUMENT")),
        (lambda: _infer(client, protocol, {**inputs, "channel_mean": inputs["channel_mean"].astype(np.int32)},
                        ["mask"]), ("400", "INVALID_ARGUMENT")),
    ]
    for call, codes in cases:
        with pytest.raises(InferenceServerException) as error:
            call()
        assert any(code in str(error.value.status()) for code in codes), (error.value.status(), error.value)
        assert error.value.message()
    assert client.is_server_live()  # and the server still answers
    assert _infer(client, protocol, inputs, ["mask"]).as_numpy("mask").shape == (1, 8, 8, 8)
