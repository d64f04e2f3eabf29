"""`kerasbrain serve`: a TF-Serving-compatible REST + gRPC server for one machine.

It reads the same `models.config`, `batching.config` and `monitoring.config` as
`tensorflow_model_server` and serves the same `saved_models/`, so clients and the contract tests
run unchanged against either. The same ports also speak the Open Inference Protocol v2 (REST under
/v2, gRPC `inference.GRPCInferenceService`) on the same models and versions.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tritonclient.grpc import service_pb2_grpc

from kerasbrain.serving.admission import Admission
from kerasbrain.serving.batching import BatchingOptions
from kerasbrain.serving.grpc_service import ModelServicer, PredictionServicer
from kerasbrain.serving.manager import ModelManager
from kerasbrain.serving.open_inference_grpc import OpenInferenceServicer
from kerasbrain.serving.protos import parse_batching_parameters, parse_monitoring_config
from kerasbrain.serving.rest import Metrics, RestServer, make_handler

log = logging.getLogger("kerasbrain.serving")


@dataclass(frozen=True)
class ServerOptions:
    rest_port: int = 8501
    grpc_port: int = 8500
    host: str = "127.0.0.1"
    poll_seconds: float = 5.0
    max_body_bytes: int = 256 * 1024**2
    grpc_max_message_bytes: int = 512 * 1024**2
    grpc_workers: int = 16
    max_inflight_mb: int = 1024  # REST bodies read and parsed at once (admission.py)
    case_slots: int = 2  # whole-case requests run at once (each ~2 GB for a BraTS-size case)
    max_waiting: int = 8  # requests waiting for either; more are answered RESOURCE_EXHAUSTED
    wait_seconds: float = 60.0


class Server:
    """Owns the model manager, the REST server and the gRPC server; `start()` returns the bound ports."""

    def __init__(self, manager: ModelManager, options: ServerOptions = ServerOptions(), monitoring_path: str | None = None):
        self.manager = manager
        self.options = options
        self.metrics = Metrics()
        self.monitoring_path = monitoring_path
        self._rest = None
        self._grpc = None
        self.rest_port = self.grpc_port = None

    def start(self) -> Server:
        o = self.options
        self.manager.refresh()
        self.manager.start_polling(o.poll_seconds)
        self.bodies = Admission(o.max_inflight_mb * 1024**2, o.max_waiting, o.wait_seconds, "request bodies",
                                " bytes")
        handler = make_handler(self.manager, o.max_body_bytes, self.metrics, self.monitoring_path, self.bodies)
        self._rest = RestServer((o.host, o.rest_port), handler)
        self.rest_port = self._rest.server_address[1]
        threading.Thread(target=self._rest.serve_forever, name="rest", daemon=True).start()
        size = o.grpc_max_message_bytes
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=o.grpc_workers),
                                 options=[("grpc.max_receive_message_length", size),
                                          ("grpc.max_send_message_length", size)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(self.manager),
                                                                            self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.manager), self._grpc)
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(OpenInferenceServicer(self.manager), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"{o.host}:{o.grpc_port}")
        if self.grpc_port == 0:
            raise OSError(f"cannot bind gRPC to {o.host}:{o.grpc_port}")
        self._grpc.start()
        log.info("REST on %s:%s, gRPC on %s:%s", o.host, self.rest_port, o.host, self.grpc_port)
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
        self.manager.stop()


def build_server(model_config_file=None, model_name=None, model_base_path=None, saved_models_dir=None,
                 batching_config=None, monitoring_config=None, options: ServerOptions = ServerOptions()) -> Server:
    """Parse the configuration files (errors name the file) and assemble a server, not yet started."""
    batching = BatchingOptions.from_proto(parse_batching_parameters(batching_config)) if batching_config else None
    monitoring_path = None
    if monitoring_config:
        prometheus = parse_monitoring_config(monitoring_config).prometheus_config
        if prometheus.enable:
            monitoring_path = prometheus.path or "/monitoring/prometheus/metrics"
    cases = Admission(options.case_slots, options.max_waiting, options.wait_seconds, "whole-case requests")
    manager = ModelManager(model_config_file, model_name, model_base_path, saved_models_dir, batching, cases)
    return Server(manager, options, monitoring_path)
