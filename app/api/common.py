"""What every blueprint shares: the services, JSON bodies and role checks."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from app.errors import Forbidden, InvalidInput, Unauthorized
from app.security import Credentials, bearer_token, device_key
from app.services.pipeline import validation_details

if TYPE_CHECKING:
    from app.bootstrap import Services
    from app.services.device_registry import DeviceRegistry
    from app.services.device_repository import Device

# Deepest JSON nesting we parse; a reading is two levels deep, a batch three.
MAX_JSON_DEPTH = 32


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


@dataclass(frozen=True)
class Caller:
    """Who sent this request: its credentials, checked once (`caller()`).

    Each credential is read from its documented header only: device keys from
    X-API-Key or `Authorization: Bearer`; operator, viewer and admin tokens
    from Bearer. `bearer` and `api_key` are the roles (role -> label) of the
    token in each header, None when that header was not sent.
    """
    bearer: dict[str, str] | None
    api_key: dict[str, str] | None
    device: Device | None = None     # a registered device's own token (X-API-Key or Bearer)

    def presented(self, role: str) -> dict[str, str] | None:
        """The roles of the credential `role` is read from, None when it was not sent."""
        if role == "device" and self.api_key is not None:
            return self.api_key
        return self.bearer

    def label(self, role: str) -> str | None:
        return (self.presented(role) or {}).get(role)


def check_credentials(headers, credentials: Credentials, devices: DeviceRegistry | None) -> Caller:
    """The one credential check of a request: each presented token digested once."""
    bearer = bearer_token(headers)
    api_key = headers.get("X-API-Key") or None
    device_token = device_key(headers)
    # Registered devices' own tokens, looked up only when there are any.
    device = devices.authenticate(device_token) if device_token and devices is not None and len(devices) else None
    return Caller(credentials.identify(bearer) if bearer else None,
                  credentials.identify(api_key) if api_key else None, device)


def caller() -> Caller:
    """This request's Caller, checked on first use and kept on flask.g for the rest
    of the request (the rate limit and the role check share it)."""
    found = g.get("caller")
    if found is None:
        bhs = services()
        found = g.caller = check_credentials(request.headers, bhs.tokens, bhs.devices)
    return found


def _require(role: str, optional: bool):
    """A view decorator: 401/403 unless the caller has `role` (`optional`: only when
    the role has credentials configured). The label goes to `g.principal`."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if optional and not services().tokens.of(role):
                g.principal = None
                return view(*args, **kwargs)
            who = caller()
            grants = who.presented(role)
            if grants is None:
                where = ("X-API-Key: <key> or Authorization: Bearer <key>" if role == "device"
                         else "Authorization: Bearer <token>")
                hint = " (X-API-Key is for device keys only)" if who.api_key is not None else ""
                raise Unauthorized(f"{role} credentials required: {where}{hint}")
            label = grants.get(role)
            if label is None:
                # A token of another role is known but not enough: 403, else 401.
                if grants:
                    raise Forbidden(f"this token does not grant {role} access")
                raise Unauthorized(f"invalid {role} credentials")
            g.principal = label
            return view(*args, **kwargs)
        return wrapper
    return decorator


require_device = _require("device", optional=True)
require_viewer = _require("viewer", optional=True)
require_operator = _require("operator", optional=False)


def require_admin(view):
    """The admin role (ADMIN_TOKENS); without any configured, 403: the registry is read-only."""
    checked = _require("admin", optional=False)(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not services().tokens.admins and caller().bearer is not None:
            raise Forbidden("no ADMIN_TOKENS are configured: this needs the admin role")
        return checked(*args, **kwargs)
    return wrapper
