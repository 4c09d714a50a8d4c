"""Read endpoints for the dashboard and other programs."""
from __future__ import annotations

import itertools
import re

from flask import Blueprint, Response as Response_, jsonify, request, stream_with_context
from spectree import Response

from app import wire
from app.api.common import query_limit, require_viewer, services
from app.api.openapi import VIEWER, document, responses
from app.api.schemas import (PlanResponse, DecisionList, ExportParams, Forecast, Health, HistoryParams,
                             HistoryResponse, LatestFound, LatestMissing, LimitParams, NetworkResponse,
                             RoutingResponse, SensorDetail, SensorList, Status, WqiList)
from app.errors import InvalidInput, NotFound
from app.models import ID_CHARS, ErrorEnvelope
from app.services import history_export as export
from app.services.history import build_query, read_history

# Characters kept in an export's file name; the rest become "_".
UNSAFE_FILENAME = re.compile(rf"[^{ID_CHARS}]")

bp = Blueprint("read", __name__)


@bp.get("/api/sensors")
@document(resp=responses(HTTP_200=SensorList), tags=["read"], security=VIEWER)
@require_viewer
def sensors():
    """Latest reading of every sensor."""
    readings = wire.live_readings(services().views.live_readings())
    return jsonify(sensors=readings, count=len(readings))


@bp.get("/api/sensors/<sensor_id>")
@document(resp=responses(HTTP_200=SensorDetail), tags=["read"], security=VIEWER)
@require_viewer
def sensor(sensor_id: str):
    """Latest reading of one sensor with its recent points."""
    store = services().store
    record = store.latest(sensor_id)
    if record is None:
        raise NotFound(f"sensor '{sensor_id}' has not reported")
    return jsonify(wire.sensor_detail(record, store.recent(sensor_id)))


@bp.get("/api/latest/<sensor_id>")
@document(resp=Response(HTTP_200=LatestFound, HTTP_404=LatestMissing, HTTP_401=ErrorEnvelope,
                        HTTP_403=ErrorEnvelope), tags=["read"], security=VIEWER)
@require_viewer
def latest(sensor_id: str):
    """Latest value of one sensor (legacy shape)."""
    record = services().store.latest(sensor_id)
    if record is None:
        # The legacy shape, with the error envelope beside it like every other 404.
        return jsonify(sensorId=sensor_id, found=False,
                       **NotFound(f"sensor '{sensor_id}' has not reported").envelope()), 404
    return jsonify(wire.latest_legacy(sensor_id, record))


@bp.get("/api/history/<sensor_id>")
@document(query=HistoryParams, resp=responses(HTTP_200=HistoryResponse, HTTP_503=ErrorEnvelope),
          tags=["read"], security=VIEWER)
@require_viewer
def history(sensor_id: str):
    """History of one sensor: raw or a rollup chosen from the range, with min/max bands."""
    bhs = services()
    now = bhs.clock()
    query = build_query(sensor_id, request.args, now)
    answer = read_history(bhs.history, query, now)
    return jsonify(sensor_id=sensor_id, resolution=answer["resolution"], segments=answer["segments"],
                   points=answer["points"], capped=answer["capped"],
                   every=request.args.get("every"), fn=query.fn)


@bp.get("/api/history/export")
@document(query=ExportParams, resp=Response(HTTP_200=None, HTTP_401=ErrorEnvelope, HTTP_403=ErrorEnvelope,
                                            HTTP_422=ErrorEnvelope, HTTP_503=ErrorEnvelope),
          tags=["read"], security=VIEWER)
@require_viewer
def history_export():
    """History of one or more sensors as CSV or NDJSON, streamed (resolution as /api/history)."""
    bhs = services()
    now = bhs.clock()
    wanted = export.export_request(request.args, now)
    rollup = wanted["resolution"] != "raw"

    def describe(sensor_id: str) -> dict:
        known = bhs.network.defaults(sensor_id) or {}
        latest = bhs.store.latest(sensor_id)
        return {"metric": (latest and latest.metric) or known.get("metric"),
                "unit": (latest and latest.unit) or known.get("unit")}

    chunks = export.encode(export.rows(bhs.history, wanted, now, describe), wanted["format"], rollup)
    first = next(chunks, "")    # the first page is read here, so a store that is down answers 503
                                # (an NDJSON export of no rows has no chunk at all)
    name = f"history-{wanted['sensors'][0]}{'-etc' if len(wanted['sensors']) > 1 else ''}-{wanted['resolution']}"
    # Header values are Latin-1 on the wire: an id outside the reading charset (any id may
    # be asked for) would make the server drop the connection instead of answering.
    name = UNSAFE_FILENAME.sub("_", name)
    headers = {"Content-Disposition": f'attachment; filename="{name}.{wanted["format"]}"',
               "X-History-Resolution": wanted["resolution"]}
    return Response_(stream_with_context(itertools.chain([first], chunks)),
                     mimetype=export.FORMATS[wanted["format"]], headers=headers)


@bp.get("/api/network")
@document(resp=responses(HTTP_200=NetworkResponse), tags=["read"], security=VIEWER)
@require_viewer
def network():
    """The water network: nodes, links and sensors."""
    return jsonify(services().views.network_view())


@bp.get("/api/health")
@document(resp=Response(HTTP_200=Health), tags=["operations"])
def health():
    """Health for probes: service state and network score."""
    return jsonify(wire.health(services().views.health()))


@bp.get("/api/status")
@document(resp=responses(HTTP_200=Status), tags=["operations"], security=VIEWER)
@require_viewer
def status():
    """Server metrics: rates, totals, history, MQTT, solve time."""
    return jsonify(wire.status(services().views.status()))


@bp.get("/api/routing")
@document(resp=responses(HTTP_200=RoutingResponse), tags=["decisions"], security=VIEWER)
@require_viewer
def routing():
    """The current routing plan."""
    return jsonify(wire.routing(services().views.routing_view()))


@bp.get("/api/plan")
@document(resp=responses(HTTP_200=PlanResponse), tags=["decisions"], security=VIEWER)
@require_viewer
def plan():
    """The receding-horizon plan: every step; /api/routing is its first."""
    return jsonify(wire.plan(services().views.plan_view()))


@bp.get("/api/decisions")
@document(query=LimitParams, resp=responses(HTTP_200=DecisionList), tags=["decisions"], security=VIEWER)
@require_viewer
def decisions():
    """Recent decisions, newest first."""
    return jsonify(decisions=wire.decisions(services().store.decisions(query_limit(10, 500))))


@bp.get("/api/wqi")
@document(resp=responses(HTTP_200=WqiList), tags=["quality"], security=VIEWER)
@require_viewer
def wqi():
    """Water Quality Index per station."""
    return jsonify(stations=services().views.wqi())


@bp.get("/api/forecast")
@document(resp=responses(HTTP_200=Forecast), tags=["quality"], security=VIEWER)
@require_viewer
def forecast():
    """Demand forecast per zone for the next hour."""
    bhs = services()
    return jsonify(wire.forecast(bhs.forecaster.view(bhs.clock())))
