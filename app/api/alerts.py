"""Alarms (ISA-18.2): the listing, the summary, and acknowledge / shelve / unshelve.

`POST /api/control {"action": "ack_alert"}` stays working beside these.
Every operator action here is audited on the alarm (its `events`) and in the
alert history, with the operator's label.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from werkzeug.routing import BaseConverter

from app import wire
from app.api.common import json_body, parse_model, require_operator, require_viewer, services
from app.api.openapi import OPERATOR, VIEWER, document, responses
from app.api.schemas import (AckMany, AckManyResult, AlertList, AlertOne, AlertParams, AlertSummary,
                             ShelveRequest)
from app.errors import InvalidInput
from app.services.alerts import STATE_FILTERS

bp = Blueprint("alerts", __name__, url_prefix="/api/alerts")


class AlertIdConverter(BaseConverter):
    """An alarm id: any path segment except the collection's own action names.

    Without it `/api/alerts/ack` also matches `GET /api/alerts/<alert_id>`, so an
    OPTIONS answer advertises a GET the API does not have.
    """
    regex = r"(?!(?:ack|summary)$)[^/]+"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("alert_id", AlertIdConverter))


@bp.get("")
@document(query=AlertParams, resp=responses(HTTP_200=AlertList), tags=["alarms"], security=VIEWER)
@require_viewer
def listing():
    """Alarms: active, open (not yet cleared and acknowledged), all, or one state."""
    state = request.args.get("state", "active")
    if state not in STATE_FILTERS:
        raise InvalidInput("bad state", [{"field": "state", "message": f"one of {', '.join(STATE_FILTERS)}"}])
    book = services().alerts
    if state == "active":
        alerts = [a for a in book.listing(include_cleared=False) if a.active]
    elif state in ("open", "all"):
        alerts = book.listing(include_cleared=state == "all")
    else:
        alerts = book.listing(include_cleared=state == "cleared_acknowledged", state=state)
    return jsonify(alerts=wire.alerts(alerts), summary=book.summary())


@bp.get("/summary")
@document(resp=responses(HTTP_200=AlertSummary), tags=["alarms"], security=VIEWER)
@require_viewer
def summary():
    """Alarm counts per ISA-18.2 state, shelved apart, and active ones per severity."""
    return jsonify(services().alerts.summary())


@bp.get("/<alert_id:alert_id>")
@document(resp=responses(HTTP_200=AlertOne), tags=["alarms"], security=VIEWER)
@require_viewer
def one(alert_id: str):
    """One alarm with its audit trail (`events`)."""
    return jsonify(alert=wire.alert(services().alerts.get(alert_id), events=True))


@bp.post("/ack")
@document(json=AckMany, resp=responses(HTTP_200=AckManyResult), tags=["alarms"], security=OPERATOR)
@require_operator
def ack_many():
    """Acknowledge several alarms at once ("acknowledge all visible")."""
    body = parse_model(AckMany, json_body())
    done = services().alerts.acknowledge_many(body.ids, g.principal)
    return jsonify(ok=True, acknowledged=[a.id for a in done], alerts=wire.alerts(done))


@bp.post("/<alert_id:alert_id>/ack")
@document(resp=responses(HTTP_200=AlertOne), tags=["alarms"], security=OPERATOR)
@require_operator
def ack(alert_id: str):
    """Acknowledge an alarm; a cleared one is then archived."""
    return jsonify(ok=True, alert=wire.alert(services().alerts.acknowledge(alert_id, g.principal)))


@bp.post("/<alert_id:alert_id>/shelve")
@document(json=ShelveRequest, resp=responses(HTTP_200=AlertOne), tags=["alarms"], security=OPERATOR)
@require_operator
def shelve(alert_id: str):
    """Hide a nuisance alarm for `duration_s` seconds; it returns by itself."""
    body = parse_model(ShelveRequest, json_body())
    return jsonify(ok=True, alert=wire.alert(services().alerts.shelve(alert_id, g.principal, body.duration_s,
                                                                        body.reason)))


@bp.post("/<alert_id:alert_id>/unshelve")
@document(resp=responses(HTTP_200=AlertOne), tags=["alarms"], security=OPERATOR)
@require_operator
def unshelve(alert_id: str):
    """Return a shelved alarm to view now."""
    return jsonify(ok=True, alert=wire.alert(services().alerts.unshelve(alert_id, g.principal)))
