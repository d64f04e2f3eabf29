"""Clients for TF Serving's REST and gRPC APIs (kerasbrain's server or `tensorflow_model_server`).

    client = connect("grpc://localhost:8500", "tumor3d")       # or http://localhost:8501
    outputs = client.predict({"image": windows, "channel_mean": m, "channel_std": s})

`serving/remote_predictor.py` plugs a client into kerasbrain's sliding window and whole-case
prediction, so `kerasbrain predict --server ...` writes exactly what local prediction writes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlparse

import numpy as np

_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_UINT8": np.uint8, "DT_INT32": np.int32,
           "DT_INT64": np.int64, "DT_BOOL": np.bool_, "DT_STRING": object, "DT_HALF": np.float16}


class ServingClientError(RuntimeError):
    """The server answered with an error; `status` is the HTTP status or the gRPC code name."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _model_path(model: str, version: int | None, label: str | None) -> str:
    path = f"/v1/models/{model}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{label}"
    return path


def _from_json(value, dtype):
    """A JSON output as an array of the signature's dtype ({"b64": ...} and plain strings as bytes)."""
    if dtype is object:
        from kerasbrain.serving.rest_json import decode_b64

        decode = np.vectorize(lambda v: v if isinstance(v, bytes) else str(v).encode(), otypes=[object])
        return decode(np.asarray(decode_b64(value), dtype=object))
    return np.asarray(value, dtype=dtype)


class RestClient:
    def __init__(self, url: str, model: str, version: int | None = None, label: str | None = None,
                 timeout: float = 600.0):
        self.base = url.rstrip("/")
        self.model, self.version, self.label, self.timeout = model, version, label, timeout
        self._output_dtypes = {}  # per signature

    def _request(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (user-given URL)
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise ServingClientError(exc.code, message) from exc
        except urllib.error.URLError as exc:
            raise ServingClientError("UNAVAILABLE", f"cannot reach {self.base}: {exc.reason}") from exc

    def status(self) -> dict:
        return self._request("GET", _model_path(self.model, self.version, self.label))

    def metadata(self) -> dict:
        return self._request("GET", _model_path(self.model, self.version, self.label) + "/metadata")

    def signature(self, name: str = "serving_default") -> dict:
        return self.metadata()["metadata"]["signature_def"]["signature_def"][name]

    def signature_names(self) -> list[str]:
        return sorted(self.metadata()["metadata"]["signature_def"]["signature_def"])

    def output_names(self, signature_name: str = "serving_default") -> list[str]:
        """The outputs one signature answers, sorted."""
        return sorted(self.signature(signature_name)["outputs"])

    def available_versions(self) -> list[int]:
        """Versions of the model (or of the asked version/label) that are AVAILABLE, oldest first."""
        return sorted(int(s["version"]) for s in self.status().get("model_version_status", [])
                      if s.get("state") == "AVAILABLE")

    def output_shape(self, output: str, signature_name: str = "serving_default") -> list[int]:
        """The declared shape of one signature output (-1 for a free dimension)."""
        dims = self.signature(signature_name)["outputs"][output]["tensor_shape"].get("dim", [])
        return [int(d.get("size", -1)) for d in dims]

    def predict(self, inputs: dict[str, np.ndarray], signature_name: str = "serving_default",
                output_filter: list[str] | None = None) -> dict[str, np.ndarray]:
        if signature_name not in self._output_dtypes:
            outputs = self.signature(signature_name)["outputs"]
            self._output_dtypes[signature_name] = {k: _DTYPES.get(v["dtype"], np.float32) for k, v in outputs.items()}
        dtypes = self._output_dtypes[signature_name]
        from kerasbrain.serving.rest_json import json_value  # the server's own encoding ({"b64": ...} for bytes)

        body = {"signature_name": signature_name, "inputs": {k: json_value(np.asarray(v)) for k, v in inputs.items()}}
        result = self._request("POST", _model_path(self.model, self.version, self.label) + ":predict", body)
        outputs = result["outputs"]
        if not isinstance(outputs, dict):  # a single output comes back bare
            outputs = {next(iter(dtypes)): outputs}
        arrays = {k: _from_json(v, dtypes.get(k)) for k, v in outputs.items()}
        return {k: arrays[k] for k in output_filter} if output_filter else arrays


class GrpcClient:
    def __init__(self, target: str, model: str, version: int | None = None, label: str | None = None,
                 timeout: float = 600.0, max_message_bytes: int = 512 * 1024**2):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self._channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", max_message_bytes),
                                                               ("grpc.max_send_message_length", max_message_bytes)])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self.model, self.version, self.label, self.timeout = model, version, label, timeout

    def _spec(self, spec, signature_name=None):
        spec.name = self.model
        if self.version is not None:
            spec.version.value = int(self.version)
        elif self.label is not None:
            spec.version_label = self.label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise ServingClientError(exc.code().name, exc.details()) from exc

    def predict(self, inputs: dict[str, np.ndarray], signature_name: str = "serving_default",
                output_filter: list[str] | None = None) -> dict[str, np.ndarray]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature_name)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(np.ascontiguousarray(value)))
        request.output_filter.extend(output_filter or [])
        response = self._call(self._predict.Predict, request)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def metadata(self):
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predict.GetModelMetadata, request)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        return response, sig_map

    def signature_names(self) -> list[str]:
        return sorted(self.metadata()[1].signature_def)

    def output_names(self, signature_name: str = "serving_default") -> list[str]:
        """The outputs one signature answers, sorted."""
        return sorted(self.metadata()[1].signature_def[signature_name].outputs)

    def available_versions(self) -> list[int]:
        """Versions of the model (or of the asked version/label) that are AVAILABLE, oldest first."""
        available = 30  # tensorflow_serving ModelVersionStatus.State.AVAILABLE
        return sorted(int(s.version) for s in self.status().model_version_status if s.state == available)

    def output_shape(self, output: str, signature_name: str = "serving_default") -> list[int]:
        """The declared shape of one signature output (-1 for a free dimension)."""
        _, sig_map = self.metadata()
        return [int(d.size) for d in sig_map.signature_def[signature_name].outputs[output].tensor_shape.dim]

    def status(self):
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        return self._call(self._models.GetModelStatus, request)

    def close(self):
        self._channel.close()


def connect(server: str, model: str, version: int | None = None, label: str | None = None, timeout: float = 600.0):
    """A client for `http(s)://host:port` (REST) or `grpc://host:port` (gRPC)."""
    parsed = urlparse(server)
    if parsed.scheme in ("http", "https"):
        return RestClient(server, model, version, label, timeout)
    if parsed.scheme == "grpc":
        if not parsed.netloc:
            raise ValueError(f"expected grpc://HOST:PORT. Received: server={server!r}")
        return GrpcClient(parsed.netloc, model, version, label, timeout)
    raise ValueError(f"server must start with http://, https:// or grpc://. Received: server={server!r}")


BUSY = (429, "RESOURCE_EXHAUSTED")


def with_retries(call, attempts: int = 8, first_wait: float = 0.25, on_busy=None):
    """`call()`, retried with exponential back-off while the server answers busy (429 / RESOURCE_EXHAUSTED)."""
    import time

    for attempt in range(attempts):
        try:
            return call()
        except ServingClientError as exc:
            if exc.status not in BUSY or attempt == attempts - 1:
                raise
            if on_busy:
                on_busy()
            time.sleep(first_wait * 2**attempt)
