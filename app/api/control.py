"""Operator controls over HTTP; the `/control` namespace runs the same path."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from app.api.common import json_body, parse_model, require_operator, services
from app.api.read import _limit
from app.models import ControlRequest

bp = Blueprint("control", __name__)


@bp.post("/api/control")
@require_operator
def control():
    command = parse_model(ControlRequest, json_body())
    applied = services().controls.apply(command, g.principal, request.remote_addr)
    return jsonify(ok=True, control=applied)


@bp.get("/api/controls")
@require_operator
def controls():
    return jsonify(controls=services().controls.recent(_limit(50, 500)))
