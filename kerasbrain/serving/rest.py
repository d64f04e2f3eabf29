"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) over `http.server`.

    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]            model version status
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata   signature definitions
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict    row ("instances") or columnar ("inputs")
    /v2/...                                                  the Open Inference Protocol (open_inference.py)

Every failure is answered as `{"error": "..."}` with TF Serving's HTTP status; a handler never
lets an exception reach the server loop, so no request can stop the server. The request and
response JSON of :predict is `rest_json.py`'s.
"""

from __future__ import annotations

import json
import logging
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format

from kerasbrain.serving import open_inference
from kerasbrain.serving.errors import ServingError, invalid, not_found
from kerasbrain.serving.rest_json import format_predict_response, parse_predict_body

log = logging.getLogger("kerasbrain.serving")
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?/?$")


def status_json(statuses) -> dict:
    return {"model_version_status": [
        {"version": str(v), "state": s.state,
         "status": {"error_code": "OK" if not s.error else "UNKNOWN", "error_message": s.error}}
        for v, s in statuses]}


class Metrics:
    """Counters exported in Prometheus text format when monitoring is enabled."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self.requests: dict[tuple, int] = {}
        self.latency_sum: dict[str, float] = {}

    def record(self, model: str, api: str, status: str, seconds: float):
        with self._lock:
            key = (model, api, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency_sum[model] = self.latency_sum.get(model, 0.0) + seconds

    def render(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            for (model, api, status), n in sorted(self.requests.items()):
                lines.append(f':tensorflow:serving:request_count{{model_name="{model}",api="{api}",'
                             f'entrypoint="REST",status="{status}"}} {n}')
            lines.append("# TYPE :tensorflow:serving:request_latency_sum_seconds counter")
            for model, total in sorted(self.latency_sum.items()):
                lines.append(f':tensorflow:serving:request_latency_sum_seconds{{model_name="{model}"}} {total:.6f}')
        return "\n".join(lines) + "\n"


def make_handler(manager, max_body_bytes: int, metrics: Metrics, monitoring_path: str | None, bodies=None):
    from kerasbrain.serving.admission import Admission

    bodies = bodies or Admission(4 * max_body_bytes, 8, 60.0, "request bodies", " bytes")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kerasbrain-serving"

        def log_message(self, fmt, *args):  # route http.server's access log to logging
            log.debug("%s - %s", self.address_string(), fmt % args)

        def _send(self, status: int, payload, content_type="application/json", headers=None):
            body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client left before its answer
                self.close_connection = True
                log.debug("%s left before the %d answer was sent", self.address_string(), status)

        def _error(self, exc: ServingError):
            self._send(exc.http_status, {"error": exc.message})

        def _read_body(self) -> bytes:
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                raise ServingError("LENGTH_REQUIRED", "chunked request bodies are not supported; send Content-Length")
            if length is None:
                return b""
            try:
                n = int(length)
            except ValueError as exc:
                self.close_connection = True
                raise invalid(f"invalid Content-Length {length!r}") from exc
            if n < 0:
                self.close_connection = True
                raise invalid(f"invalid Content-Length {length!r}")
            if n > max_body_bytes:
                self.close_connection = True  # do not read the oversized body
                raise ServingError("PAYLOAD_TOO_LARGE",
                                   f"request body of {n} bytes exceeds the limit of {max_body_bytes} bytes")
            return self.rfile.read(n)

        def _route(self):
            path = self.path.split("?", 1)[0]
            match = _PATH.match(path)
            if not match:
                raise not_found(f"Malformed request: {self.command} {path}")
            version = match["version"]
            if version is not None:
                if not version.isdigit():
                    raise invalid(f"Malformed request: version must be an integer, got {version!r}")
                version = int(version)
            return match["name"], version, match["label"], match["suffix"]

        def do_GET(self):  # noqa: N802
            try:
                if monitoring_path and self.path.split("?", 1)[0] == monitoring_path:
                    self._send(200, metrics.render().encode(), "text/plain; version=0.0.4")
                    return
                body = self._read_body()
                if body:
                    raise invalid("GET requests must not have a body")
                if self.path.startswith("/v2"):
                    self._send_v2(*open_inference.rest_get(manager, self.path.split("?", 1)[0]))
                    return
                name, version, label, suffix = self._route()
                if suffix is None:
                    self._send(200, status_json(manager.status(name, version, label)))
                elif suffix == "/metadata":
                    servable = manager.resolve(name, version, label)
                    self._send(200, {
                        "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                        "metadata": {"signature_def": json_format.MessageToDict(servable.signature_def_map, preserving_proto_field_name=True)},
                    })
                else:
                    raise ServingError("METHOD_NOT_ALLOWED", f"{suffix[1:]} needs POST")
            except ServingError as exc:
                self._error(exc)
            except Exception as exc:  # noqa: BLE001 - the server must answer and keep running
                log.exception("GET %s failed", self.path)
                self._send(500, {"error": f"internal error: {type(exc).__name__}"})

        def _declared_length(self) -> int:
            try:
                return max(int(self.headers.get("Content-Length") or 0), 0)
            except ValueError:
                return 0  # _read_body refuses it with its own message

        def do_POST(self):  # noqa: N802
            start, status, self._model, self._body_read = time.perf_counter(), "OK", "", False
            declared = 0
            try:
                declared = self._declared_length()
                if declared > max_body_bytes:
                    self._read_body()  # refuses it as too large, unread
                with bodies.admit(declared):  # waits for room, or refuses before a byte is read
                    self._post()
            except ServingError as exc:
                status = exc.code
                if exc.code == "RESOURCE_EXHAUSTED" and not self._body_read:
                    self._discard_body(declared)
                self._error(exc)
            except Exception as exc:  # noqa: BLE001
                status = "INTERNAL"
                log.exception("POST %s failed", self.path)
                self._send(500, {"error": f"internal error: {type(exc).__name__}: {exc}"[:2000]})
            finally:
                metrics.record(self._model or "unknown", "predict", status, time.perf_counter() - start)

        def _discard_body(self, declared: int, limit: int = 64 * 1024**2):
            """Read a refused request's body in small pieces and drop it, so the client, still sending, reads
            its 429 instead of a broken pipe; beyond `limit` bytes the connection is closed instead."""
            if declared > limit:
                self.close_connection = True
                return
            left = declared
            while left > 0:
                piece = self.rfile.read(min(left, 1024**2))
                if not piece:
                    break
                left -= len(piece)

        def _post(self):
            body = self._read_body()
            self._body_read = True
            if self.path.startswith("/v2"):
                self._model = self.path.split("/")[3] if self.path.count("/") >= 3 else ""
                self._send_v2(*open_inference.rest_infer(manager, self.path.split("?", 1)[0], body,
                                                         self.headers.get(open_inference.HEADER_LENGTH)))
                return
            name, version, label, suffix = self._route()
            self._model = name
            if suffix in (":classify", ":regress"):
                raise ServingError("UNIMPLEMENTED", f"{suffix[1:]} is not supported by kerasbrain models; use :predict")
            if suffix != ":predict":
                raise ServingError("METHOD_NOT_ALLOWED", f"POST is only for :predict (got {self.path})")
            if not body:
                raise invalid("the request body is empty")
            try:
                request = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise invalid(f"JSON Parse error: {exc}") from exc
            servable = manager.resolve(name, version, label)
            if not isinstance(request, dict):
                raise invalid("the request body must be a JSON object")
            signature_name = request.get("signature_name")
            if signature_name is not None and not isinstance(signature_name, str):
                raise invalid("'signature_name' must be a string")
            signature = servable.signature(signature_name)
            with servable.admission(signature.name):
                inputs, form = parse_predict_body(request, signature, b64=b'"b64"' in body)
                outputs = servable.predict(signature.name, inputs, admitted=True)
            self._send(200, format_predict_response(outputs, form))

        def _send_v2(self, status: int, body: bytes, headers: dict):
            headers = dict(headers)
            self._send(status, body, headers.pop("Content-Type"), headers)

        def _not_allowed(self):
            try:
                self._read_body()
            except ServingError:
                pass
            self._error(ServingError("METHOD_NOT_ALLOWED", f"{self.command} is not supported"))

        do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    return Handler


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A client that hangs up mid-request is ordinary traffic, not an error worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError)):
            log.debug("%s disconnected mid-request", client_address[0])
            return
        super().handle_error(request, client_address)
