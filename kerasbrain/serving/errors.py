"""Errors with TF Serving's status codes, mapped to HTTP statuses and gRPC codes."""

from __future__ import annotations

import grpc

#: canonical code -> (HTTP status, gRPC status), as TF Serving's REST layer maps them
_CODES = {
    "INVALID_ARGUMENT": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "FAILED_PRECONDITION": (400, grpc.StatusCode.FAILED_PRECONDITION),
    "NOT_FOUND": (404, grpc.StatusCode.NOT_FOUND),
    "METHOD_NOT_ALLOWED": (405, grpc.StatusCode.UNIMPLEMENTED),
    "LENGTH_REQUIRED": (411, grpc.StatusCode.INVALID_ARGUMENT),
    "PAYLOAD_TOO_LARGE": (413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "RESOURCE_EXHAUSTED": (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "UNIMPLEMENTED": (501, grpc.StatusCode.UNIMPLEMENTED),
    "UNAVAILABLE": (503, grpc.StatusCode.UNAVAILABLE),
    "DEADLINE_EXCEEDED": (504, grpc.StatusCode.DEADLINE_EXCEEDED),
    "INTERNAL": (500, grpc.StatusCode.INTERNAL),
}


class ServingError(Exception):
    """A request failed; `code` is one of TF Serving's canonical codes."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        if code not in _CODES:
            raise ValueError(f"unknown status code {code!r}")
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return _CODES[self.code][0]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _CODES[self.code][1]


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)
