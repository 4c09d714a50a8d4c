"""Operator controls over HTTP; the `/control` namespace runs the same path."""
from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify, request

from app import wire
from app.api.common import json_body, parse_model, query_limit, require_admin, require_operator, services
from app.api.openapi import ADMIN, OPERATOR, document, responses
from app.api.schemas import (ControlList, ControlPreviewResponse, ControlResponse, DecisionStateResponse,
                             LimitParams, LogList, LogParams)
from app.errors import InvalidInput
from app.logs import LEVELS
from app.models import ControlRequest, ErrorEnvelope

logger = logging.getLogger(__name__)

bp = Blueprint("control", __name__)


@bp.post("/api/control")
@document(json=ControlRequest, resp=responses(HTTP_200=ControlResponse), tags=["control"],
          security=OPERATOR)
@require_operator
def control():
    """Apply an operator control."""
    command = parse_model(ControlRequest, json_body())
    applied = services().controls.apply(command, g.principal, request.remote_addr)
    return jsonify(ok=True, control=wire.control(applied))


@bp.post("/api/control/preview")
@document(json=ControlRequest, resp=responses(HTTP_200=ControlPreviewResponse), tags=["control"],
          security=OPERATOR)
@require_operator
def control_preview():
    """What a control would do, taken from the plan: the plan in force re-solved with the change.

    The body and its checks are those of POST /api/control (the same 401, 404 and 422);
    nothing is applied, audited, planned or sent. The dashboard's confirmation shows the
    answer's `sentence` and `details`.
    """
    command = parse_model(ControlRequest, json_body())
    return jsonify(ok=True, preview=wire.control_preview(services().what_if.preview(command)))


@bp.post("/api/decisions/<decision_id>/apply")
@document(resp=responses(HTTP_200=DecisionStateResponse, HTTP_404=ErrorEnvelope, HTTP_409=ErrorEnvelope),
          tags=["decisions"], security=OPERATOR)
@require_operator
def apply_decision(decision_id: str):
    """Apply a recommended decision: its commands go to the devices as in auto mode."""
    decision = services().decisions.apply(decision_id, g.principal)
    logger.info("operator %s applied decision %s", g.principal, decision_id)
    return jsonify(ok=True, decision=wire.decision(decision))


@bp.post("/api/decisions/<decision_id>/dismiss")
@document(resp=responses(HTTP_200=DecisionStateResponse, HTTP_404=ErrorEnvelope, HTTP_409=ErrorEnvelope),
          tags=["decisions"], security=OPERATOR)
@require_operator
def dismiss_decision(decision_id: str):
    """Dismiss a recommended decision: nothing is sent."""
    decision = services().decisions.dismiss(decision_id, g.principal)
    logger.info("operator %s dismissed decision %s", g.principal, decision_id)
    return jsonify(ok=True, decision=wire.decision(decision))


@bp.post("/api/admin/reset")
@document(resp=responses(HTTP_200=ControlResponse), tags=["control"], security=ADMIN)
@require_admin
def admin_reset():
    """Forget ad-hoc sensors, alarms and decisions left by a demo (audited as reset_demo)."""
    body = json_body() if request.content_length else {}
    reason = body.get("reason") if isinstance(body, dict) else None
    command = parse_model(ControlRequest, {"action": "reset_demo", "reason": reason or "POST /api/admin/reset"})
    applied = services().controls.apply(command, g.principal, request.remote_addr)
    return jsonify(ok=True, control=wire.control(applied))


@bp.get("/api/controls")
@document(query=LimitParams, resp=responses(HTTP_200=ControlList), tags=["control"], security=OPERATOR)
@require_operator
def controls():
    """The audit trail of controls."""
    return jsonify(controls=wire.control_audit(services().controls.recent(query_limit(50, 500))))


@bp.get("/api/logs")
@document(query=LogParams, resp=responses(HTTP_200=LogList), tags=["operations"], security=OPERATOR)
@require_operator
def logs():
    """Recent server log records."""
    level = request.args.get("level", "INFO").upper()
    if level not in LEVELS:
        raise InvalidInput("bad level", [{"field": "level", "message": f"one of {', '.join(LEVELS)}"}])
    return jsonify(logs=[wire.log_record(r) for r in services().logs.recent(query_limit(100, 2000), level)])
