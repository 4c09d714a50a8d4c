"""What every blueprint shares: the services, JSON bodies and role checks."""
from __future__ import annotations

import json
from functools import wraps
from typing import TYPE_CHECKING

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from app.errors import Forbidden, InvalidInput, Unauthorized
from app import security
from app.security import API_KEY_HEADER, AUTHORIZATION_HEADER, ROLES, Credentials, bearer_token
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


def _body(environ) -> bytes:
    """The request body. With a Content-Length within MAX_CONTENT_LENGTH it is read
    straight from the server's stream (which stops at that length): Werkzeug's
    guarded stream costs about 15 us more a request, on ingest's hottest path."""
    length = environ.get("CONTENT_LENGTH", "")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    # A Transfer-Encoding overrides the Content-Length (RFC 9112), as in Werkzeug.
    if length.isdigit() and limit is not None and int(length) <= limit \
            and "HTTP_TRANSFER_ENCODING" not in environ:
        return environ["wsgi.input"].read(int(length))
    return request.get_data(cache=False)   # chunked, too large (413) or no limit set


def json_body():
    """The request's JSON: 415 if it is not JSON, 400 if it does not parse."""
    environ = request.environ
    # request.is_json, without parsing the header's parameters.
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if not (mimetype == "application/json" or mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise UnsupportedMediaType("expected a JSON body with Content-Type: application/json")
    raw = _body(environ)
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


_UNREAD = object()   # a header or lookup of a Caller not needed yet


class Caller:
    """Who sent this request: its credentials, checked once (`caller()`).

    Each credential is read from its documented header only: device keys from
    X-API-Key (first) or `Authorization: Bearer`; operator, viewer and admin
    tokens from Bearer. Lazily, so the ingest path pays only for what it asks:
    each header is read, each token digested and each role compared with it
    at most once per request.
    """
    __slots__ = ("_headers", "_credentials", "_devices", "_api_key", "_bearer", "_device", "_digests", "_labels")

    def __init__(self, headers, credentials: Credentials, devices: DeviceRegistry | None):
        self._headers = headers
        self._credentials = credentials
        self._devices = devices
        self._api_key = self._bearer = self._device = _UNREAD
        self._digests: dict[str, bytes] = {}                  # token -> its digest
        self._labels: dict[tuple[str, str], str | None] = {}  # (role, token) -> label

    @property
    def api_key(self) -> str | None:
        if self._api_key is _UNREAD:
            self._api_key = self._headers.get(API_KEY_HEADER) or None
        return self._api_key

    @property
    def bearer(self) -> str | None:
        if self._bearer is _UNREAD:
            self._bearer = bearer_token(self._headers)
        return self._bearer

    def token(self, role: str) -> str | None:
        """The token `role` is read from, None when it was not sent."""
        if role == "device":
            key = self.api_key
            if key:
                return key
        return self.bearer

    def _label(self, token: str, role: str) -> str | None:
        key = (role, token)
        labels = self._labels
        if key in labels:
            return labels[key]
        presented = self._digests.get(token)
        if presented is None:
            presented = self._digests[token] = security.digest(token)
        label = labels[key] = self._credentials.of(role).match(presented)
        return label

    def label(self, role: str) -> str | None:
        """The label `role`'s credential has in that role, None if it was not sent or has not the role."""
        token = self.token(role)
        return self._label(token, role) if token else None

    def known(self, role: str) -> bool:
        """Whether the token `role` is read from is a credential of any role (403, not 401)."""
        token = self.token(role)
        return token is not None and any(self._label(token, other) for other in ROLES)

    @property
    def device(self) -> Device | None:
        """The registered device whose own token this is (X-API-Key or Bearer), if any."""
        if self._device is _UNREAD:
            devices = self._devices
            # Looked up only when devices are registered at all.
            token = self.token("device") if devices is not None and len(devices) else None
            self._device = devices.authenticate(token) if token else None
        return self._device


def check_credentials(headers, credentials: Credentials, devices: DeviceRegistry | None) -> Caller:
    """The one credential check of a request (its parts run when first asked for)."""
    return Caller(headers, credentials, devices)


def caller() -> Caller:
    """This request's Caller, made on first use and kept on flask.g for the rest of
    the request (the rate limit and the role check share it)."""
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
            if who.token(role) is None:
                where = ("X-API-Key: <key> or Authorization: Bearer <key>" if role == "device"
                         else "Authorization: Bearer <token>")
                hint = " (X-API-Key is for device keys only)" if who.api_key is not None else ""
                raise Unauthorized(f"{role} credentials required: {where}{hint}")
            label = who.label(role)
            if label is None:
                # A token of another role is known but not enough: 403, else 401.
                if who.known(role):
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
