"""Every error as the contract's JSON envelope; never HTML, never a 500 for bad input."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from app.errors import DomainError, error_envelope

logger = logging.getLogger(__name__)


def error_response(status: int, message: str, details: list | None = None,
                   code: str | None = None, headers: dict | None = None):
    """An error answer over HTTP: the one envelope (app/errors.py) with its status."""
    response = jsonify(error_envelope(status, message, details, code))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        return error_response(error.status, error.message, error.details, error.code)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            return error_response(413, f"request body exceeds the {limit} byte limit")
        headers = {}
        if status == 429:
            retry = getattr(error, "retry_after", 1)
            return error_response(429, f"rate limit exceeded ({error.description}); retry in {retry} s",
                                  headers={"Retry-After": str(retry)})
        if status == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_response(status, error.description or error.name, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        logger.exception("unhandled error")
        return error_response(500, "internal error")
