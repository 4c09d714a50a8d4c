"""What every blueprint shares: the services, JSON bodies and role checks."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING
from functools import wraps

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from app.errors import DomainError, InvalidInput
from app.security import credential_for
from app.services.pipeline import validation_details

if TYPE_CHECKING:
    from app.bootstrap import Services

# Deepest JSON nesting we parse; a reading is two levels deep, a batch three.
MAX_JSON_DEPTH = 32


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


def services() -> Services:
    """The container `create_app` built for this app (app/bootstrap.py)."""
    return current_app.extensions["bhs"]


def _depth_exceeds(text: str, limit: int) -> bool:
    """Cheap bracket count, ignoring brackets inside strings."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def json_body():
    """The request's JSON: 415 if it is not JSON, 400 if it does not parse."""
    if not request.is_json:
        raise UnsupportedMediaType("expected a JSON body with Content-Type: application/json")
    raw = request.get_data(cache=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("request body is not valid UTF-8") from None
    # Only look for deep nesting when the body holds many brackets at all.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth_exceeds(text, MAX_JSON_DEPTH):
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise BadRequest(f"malformed JSON: {error}") from None


def query_limit(default: int, most: int) -> int:
    """The `limit` query parameter: an integer 1..most, else 422."""
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or not 0 < int(raw) <= most:
        raise InvalidInput("bad limit", [{"field": "limit", "message": f"an integer 1-{most}"}])
    return int(raw)


def parse_model(model: type[BaseModel], body):
    """Validate a JSON body into `model`; 422 with one detail per problem."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidInput("invalid request", validation_details(error, batch=False)) from None


def _require(tokens_attr: str, role: str, optional: bool):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            tokens = getattr(services().tokens, tokens_attr)
            if optional and not tokens:
                g.principal = None
                return view(*args, **kwargs)
            token = credential_for(role, request.headers)
            if token is None:
                where = ("X-API-Key: <key> or Authorization: Bearer <key>" if role == "device"
                         else "Authorization: Bearer <token>")
                hint = (" (X-API-Key is for device keys only)"
                        if role != "device" and request.headers.get("X-API-Key") else "")
                raise Unauthorized(f"{role} credentials required: {where}{hint}")
            label = tokens.identify(token)
            if label is None:
                # A token of another role is known but not enough: 403, else 401.
                if services().tokens.knows(token):
                    raise Forbidden(f"this token does not grant {role} access")
                raise Unauthorized(f"invalid {role} credentials")
            g.principal = label
            return view(*args, **kwargs)
        return wrapper
    return decorator


require_device = _require("devices", "device", optional=True)
require_viewer = _require("viewers", "viewer", optional=True)
require_operator = _require("operators", "operator", optional=False)


def require_admin(view):
    """The admin role (ADMIN_TOKENS); without any configured, 403: the registry is read-only."""
    checked = _require("admins", "admin", optional=False)(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not services().tokens.admins and bearer_token(request.headers) is not None:
            raise Forbidden("no ADMIN_TOKENS are configured: this needs the admin role")
        return checked(*args, **kwargs)
    return wrapper
