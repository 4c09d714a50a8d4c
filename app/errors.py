"""Domain errors, raised by services and translated at the edge, and the one error envelope.

Every error answer, HTTP or a Socket.IO acknowledgement, is made by
`error_envelope`: `{"error": {"code", "message", "details"}}`.
"""
from __future__ import annotations

# The contract's error code for each HTTP status (an error may name a finer one).
CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}
# The code of a status the table does not name.
OTHER_CODE = "error"


def error_envelope(status: int, message: str, details: list | None = None, code: str | None = None) -> dict:
    """The contract's error body; `code` defaults to the status's."""
    return {"error": {"code": code or CODES.get(status, OTHER_CODE), "message": message,
                      "details": list(details or [])}}


class DomainError(Exception):
    """Base class. `status` says how the edge should answer; `code` is set only where it
    is finer than the status's own (CODES)."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def envelope(self) -> dict:
        return error_envelope(self.status, self.message, self.details, self.code)


class InvalidInput(DomainError):
    status = 422


class SensorLimitReached(DomainError):
    """The store already tracks as many distinct sensors as it may."""

    status = 422
    code = "sensor_limit"


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403
