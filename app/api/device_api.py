"""The device API: key-value telemetry and commands, the token in the path (ThingsBoard's form).

    POST /api/v1/<token>/telemetry            {k: v} | {"ts": ms, "values": {...}} | a list
    GET  /api/v1/<token>/rpc?timeout=20       pending commands (waits up to `timeout` s)
    POST /api/v1/<token>/rpc/<command_id>     {"status": "delivered"|"successful"|"failed", "result": ...}

An unknown, rotated or deleted token is a 401. Bodies are parsed as JSON
whatever their Content-Type (device firmware is sloppy about it): not JSON
is a 400, the wrong shape a 422 naming where, past TELEMETRY_MAX_BYTES a 413.
"""
from __future__ import annotations

import json

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import BadRequest

from app import wire
from app.api.common import services
from app.api.device_schemas import CommandAnswer, CommandView, PendingCommands, TelemetryAccepted
from app.models import ErrorEnvelope
from app.api.openapi import document, responses
from app.errors import DomainError, InvalidInput, Unauthorized
from app.services.device_commands import MAX_POLL_S

bp = Blueprint("device_api", __name__)


class BodyTooLarge(DomainError):
    status = 413


def _device(token: str):
    device = services().devices.authenticate(token)
    if device is None:
        raise Unauthorized("unknown or revoked device token")
    return device


def _body(limit: int):
    too_large = BodyTooLarge(f"request body exceeds the {limit} byte limit of device messages")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadRequest(f"body is not JSON: {error}") from None


@bp.post("/api/v1/<token>/telemetry")
@document(resp=responses(HTTP_200=TelemetryAccepted), tags=["device api"])
def telemetry(token: str):
    """Key-value telemetry of the device whose token this is."""
    device = _device(token)
    body = _body(services().settings.telemetry_max_bytes)
    return jsonify(services().telemetry.accept(device, body, "http"))


@bp.get("/api/v1/<token>/rpc")
@document(resp=responses(HTTP_200=PendingCommands), tags=["device api"])
def poll(token: str):
    """The device's pending commands; waits up to `timeout` seconds for one."""
    device = _device(token)
    raw = request.args.get("timeout", "0")
    try:
        wait_s = float(raw)
    except ValueError:
        wait_s = -1.0
    if not 0 <= wait_s <= MAX_POLL_S:
        raise InvalidInput("bad timeout", [{"field": "timeout", "message": f"seconds, 0-{MAX_POLL_S:g}"}])
    pending = services().device_commands.poll(device, wait_s)
    return jsonify(commands=[wire.command_request(c) for c in pending])


@bp.post("/api/v1/<token>/rpc/<command_id>")
@document(json=CommandAnswer, resp=responses(HTTP_200=CommandView, HTTP_409=ErrorEnvelope), tags=["device api"])
def answer(token: str, command_id: str):
    """The device's answer to a command: delivered, then successful or failed."""
    device = _device(token)
    body = _body(services().settings.telemetry_max_bytes)
    return jsonify(wire.command(services().device_commands.answer(device, command_id, body)))
