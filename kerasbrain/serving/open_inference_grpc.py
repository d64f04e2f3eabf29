"""The Open Inference Protocol's gRPC service `inference.GRPCInferenceService` over the same models.

ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata and ModelInfer; the rest of the
service (shared memory, repository control, statistics) answers UNIMPLEMENTED. Tensors come in as
typed contents or as `raw_input_contents` and go back as `raw_output_contents`, as Triton answers.
The message classes are the ones NVIDIA's `tritonclient` package ships (generated from the
protocol's own .proto), so this server and third-party clients read the same definitions.
"""

from __future__ import annotations

import logging

import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from kerasbrain.serving import open_inference
from kerasbrain.serving.errors import ServingError, invalid

log = logging.getLogger("kerasbrain.serving")

#: datatype -> the typed-contents field that carries it
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _parameters(params) -> dict:
    """InferParameter map -> plain values."""
    return {key: getattr(value, value.WhichOneof("parameter_choice")) for key, value in params.items()
            if value.WhichOneof("parameter_choice")}


def _abort(context, exc: Exception):
    if isinstance(exc, ServingError):
        context.abort(exc.grpc_code, exc.message)
    log.exception("Open Inference gRPC call failed")
    import grpc

    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")


def request_inputs(request) -> dict[str, np.ndarray]:
    """The input arrays of a ModelInferRequest (raw contents in order, or typed contents)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise invalid(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    inputs = {}
    for i, tensor in enumerate(request.inputs):
        if raw:
            inputs[tensor.name] = open_inference.tensor_from_bytes(tensor.name, tensor.datatype, tensor.shape, raw[i])
            continue
        field = _CONTENTS.get(tensor.datatype)
        if field is None:
            raise invalid(f"input '{tensor.name}': datatype {tensor.datatype!r} needs raw_input_contents")
        inputs[tensor.name] = open_inference.tensor_from_data(tensor.name, tensor.datatype, tensor.shape,
                                                              list(getattr(tensor.contents, field)))
    return inputs


class OpenInferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def ServerLive(self, request, context):  # noqa: N802
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):  # noqa: N802
        return service_pb2.ServerReadyResponse(ready=open_inference.server_ready(self.manager))

    def ServerMetadata(self, request, context):  # noqa: N802
        return service_pb2.ServerMetadataResponse(**open_inference.server_metadata())

    def ModelReady(self, request, context):  # noqa: N802
        try:
            return service_pb2.ModelReadyResponse(
                ready=open_inference.model_ready(self.manager, request.name, request.version))
        except Exception as exc:  # noqa: BLE001 - a request never stops the server
            _abort(context, exc)

    def ModelMetadata(self, request, context):  # noqa: N802
        try:
            meta = open_inference.model_metadata(self.manager, request.name, request.version)
            tensors = lambda entries: [service_pb2.ModelMetadataResponse.TensorMetadata(**e) for e in entries]  # noqa: E731
            return service_pb2.ModelMetadataResponse(name=meta["name"], versions=meta["versions"],
                                                     platform=meta["platform"], inputs=tensors(meta["inputs"]),
                                                     outputs=tensors(meta["outputs"]))
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)

    def ModelInfer(self, request, context):  # noqa: N802
        try:
            names = [o.name for o in request.outputs]
            servable, outputs = open_inference.infer(self.manager, request.model_name, request.model_version,
                                                     lambda: request_inputs(request), names,
                                                     _parameters(request.parameters))
            response = service_pb2.ModelInferResponse(model_name=request.model_name,
                                                      model_version=str(servable.version), id=request.id)
            for key in names or sorted(outputs):
                array = outputs[key]
                response.outputs.add(name=key, datatype=open_inference.datatype(array.dtype), shape=list(array.shape))
                response.raw_output_contents.append(open_inference.tensor_bytes(array))
            return response
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)
