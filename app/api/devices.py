"""The device registry over HTTP (admins write, viewers read) and the command listing."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from app import wire
from app.api.common import json_body, parse_model, query_limit, require_admin, require_viewer, services
from app.api.device_schemas import (AuditList, CommandList, DeviceCreated, DeviceDeleted, DeviceList,
                                    DevicePatch, DeviceRegistration, DeviceUpdated, DeviceView)
from app.models import ErrorEnvelope
from app.api.openapi import ADMIN, VIEWER, document, responses
from app.errors import InvalidInput
from app.services.device_commands import STATES

bp = Blueprint("devices", __name__)


def _registry():
    return services().devices


@bp.post("/api/devices")
@document(json=DeviceRegistration, resp=responses(HTTP_201=DeviceCreated, HTTP_409=ErrorEnvelope), tags=["devices"],
          security=ADMIN)
@require_admin
def register():
    """Register a device; the answer carries its token, shown this once."""
    spec = parse_model(DeviceRegistration, json_body()).model_dump(exclude_none=True)
    view, token, mqtt_state = _registry().register(spec)
    return jsonify(id=view["id"], token=token, device=wire.device(view), mqtt=mqtt_state), 201


@bp.get("/api/devices")
@document(resp=responses(HTTP_200=DeviceList), tags=["devices"], security=VIEWER)
@require_viewer
def listing():
    """Every registered device: status, last seen, keys last received, unmapped keys, attributes."""
    devices = [wire.device(d) for d in _registry().listing()]
    return jsonify(devices=devices, count=len(devices))


@bp.get("/api/audit/devices")
@document(resp=responses(HTTP_200=AuditList), tags=["devices"], security=ADMIN)
@require_admin
def audit():
    """Refused writes (a credential writing sensors that are not its own), newest first."""
    return jsonify(audit=[wire.audit_entry(e) for e in _registry().audit(query_limit(100, 1000))])


@bp.get("/api/devices/<device_id>")
@document(resp=responses(HTTP_200=DeviceView), tags=["devices"], security=VIEWER)
@require_viewer
def one(device_id: str):
    """One device."""
    registry = _registry()
    return jsonify(wire.device(registry.view(registry.get(device_id))))


@bp.patch("/api/devices/<device_id>")
@document(json=DevicePatch, resp=responses(HTTP_200=DeviceUpdated, HTTP_409=ErrorEnvelope), tags=["devices"], security=ADMIN)
@require_admin
def edit(device_id: str):
    """Change a device's name, kind, node, telemetry map, actuators or command timeout."""
    patch = parse_model(DevicePatch, json_body()).model_dump(exclude_unset=True)
    view, mqtt_state = _registry().update(device_id, patch)
    return jsonify(device=wire.device(view), mqtt=mqtt_state)


@bp.post("/api/devices/<device_id>/token")
@document(resp=responses(HTTP_200=DeviceCreated), tags=["devices"], security=ADMIN)
@require_admin
def rotate(device_id: str):
    """A new token for the device; the old one stops working at once."""
    view, token, mqtt_state = _registry().rotate(device_id)
    return jsonify(id=view["id"], token=token, device=wire.device(view), mqtt=mqtt_state)


@bp.delete("/api/devices/<device_id>")
@document(resp=responses(HTTP_200=DeviceDeleted), tags=["devices"], security=ADMIN)
@require_admin
def remove(device_id: str):
    """Delete a device: its token stops working and its MQTT session is closed."""
    mqtt_state = _registry().delete(device_id)
    return jsonify(ok=True, id=device_id, mqtt=mqtt_state)


@bp.get("/api/commands")
@document(resp=responses(HTTP_200=CommandList), tags=["devices"], security=VIEWER)
@require_viewer
def commands():
    """Commands to devices, newest first; filter by ?device_id= and ?state=."""
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidInput("bad state", [{"field": "state", "message": f"one of {', '.join(STATES)}"}])
    found = services().device_commands.listing(request.args.get("device_id") or None, state,
                                               query_limit(100, 1000))
    return jsonify(commands=wire.commands(found))
