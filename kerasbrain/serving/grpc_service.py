"""TF Serving's gRPC services on the official `tensorflow_serving.apis` stubs.

PredictionService: Predict and GetModelMetadata (Classify, Regress and MultiInference answer
UNIMPLEMENTED: kerasbrain models are prediction signatures). ModelService: GetModelStatus and
HandleReloadConfigRequest. Errors are returned as gRPC status codes; the servicer never raises
past the gRPC layer.
"""

from __future__ import annotations

import logging

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.apis import status_pb2 as util_status_pb2

from kerasbrain.serving.errors import ServingError, invalid

log = logging.getLogger("kerasbrain.serving")
_STATES = {"START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}


def _spec(model_spec):
    if not model_spec.name:
        raise invalid("model_spec.name is required")
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label or None
    return model_spec.name, version, label


def _abort(context, exc: Exception):
    if isinstance(exc, ServingError):
        context.abort(exc.grpc_code, exc.message)
    log.exception("gRPC request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def Predict(self, request, context):  # noqa: N802
        try:
            servable = self.manager.resolve(*_spec(request.model_spec))
            signature = servable.signature(request.model_spec.signature_name or None)
            with servable.admission(signature.name):  # before decoding: a waiting case holds no copies
                inputs = {}
                for key, proto in request.inputs.items():
                    try:
                        value = tf.make_ndarray(proto)
                    except Exception as exc:  # noqa: BLE001 - malformed TensorProto
                        raise invalid(f"input '{key}' is not a valid TensorProto ({exc})") from exc
                    info = signature.inputs.get(key)
                    if info is not None and value.dtype != info.dtype:
                        raise invalid(f"input '{key}' expects {info.dtype.name}; got {value.dtype.name}")
                    inputs[key] = value
                outputs = servable.predict(signature.name, inputs, list(request.output_filter) or None,
                                           admitted=True)
                del inputs
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature.name
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(np.ascontiguousarray(value)))
            return response
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise invalid(f"metadata_field must be ['signature_def']; got {fields}")
            servable = self.manager.resolve(*_spec(request.model_spec))
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.metadata["signature_def"].Pack(servable.signature_def_map)
            return response
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "kerasbrain models serve Predict signatures only")

    Classify = Regress = MultiInference = _unimplemented


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            name, version, label = _spec(request.model_spec)
            response = get_model_status_pb2.GetModelStatusResponse()
            for v, state in self.manager.status(name, version, label):
                entry = response.model_version_status.add(version=v, state=_STATES[state.state])
                entry.status.CopyFrom(util_status_pb2.StatusProto(error_code=2 if state.error else 0,
                                                                  error_message=state.error))
            return response
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        try:
            self.manager.apply_config(request.config)
            return model_management_pb2.ReloadConfigResponse(status=util_status_pb2.StatusProto(error_code=0))
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)
