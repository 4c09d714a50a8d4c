"""Domain errors, raised by services and translated to HTTP at the edge."""
from __future__ import annotations


class DomainError(Exception):
    """Base class. `status` and `code` say how the edge should answer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(DomainError):
    status = 422
    code = "validation_error"


class SensorLimitReached(DomainError):
    """The store already tracks as many distinct sensors as it may."""

    status = 422
    code = "sensor_limit"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
