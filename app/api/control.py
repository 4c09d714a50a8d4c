"""Operator controls over HTTP; the `/control` namespace runs the same path."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from app.api.common import json_body, parse_model, query_limit, require_operator, services
from app.api.openapi import document, responses
from app.api.schemas import ControlList, ControlResponse, LimitParams, LogList, LogParams
from app.errors import InvalidInput
from app.logs import LEVELS
from app.models import ControlRequest

bp = Blueprint("control", __name__)


@bp.post("/api/control")
@document(json=ControlRequest, resp=responses(HTTP_200=ControlResponse), tags=["control"],
          security={"operator": []})
@require_operator
def control():
    """Apply an operator control."""
    command = parse_model(ControlRequest, json_body())
    applied = services().controls.apply(command, g.principal, request.remote_addr)
    return jsonify(ok=True, control=applied)


@bp.get("/api/controls")
@document(query=LimitParams, resp=responses(HTTP_200=ControlList), tags=["control"], security={"operator": []})
@require_operator
def controls():
    """The audit trail of controls."""
    return jsonify(controls=services().controls.recent(query_limit(50, 500)))


@bp.get("/api/logs")
@document(query=LogParams, resp=responses(HTTP_200=LogList), tags=["operations"], security={"operator": []})
@require_operator
def logs():
    """Recent server log records."""
    level = request.args.get("level", "INFO").upper()
    if level not in LEVELS:
        raise InvalidInput("bad level", [{"field": "level", "message": f"one of {', '.join(LEVELS)}"}])
    return jsonify(logs=services().logs.recent(query_limit(100, 2000), level))
