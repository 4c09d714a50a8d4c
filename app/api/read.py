"""Read endpoints for the dashboard and other programs."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.api.common import require_viewer, services
from app.errors import InvalidInput, NotFound
from app.services.history import build_query

bp = Blueprint("read", __name__)


def _limit(default: int, most: int) -> int:
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or not 0 < int(raw) <= most:
        raise InvalidInput("bad limit", [{"field": "limit", "message": f"an integer 1-{most}"}])
    return int(raw)


@bp.get("/api/sensors")
@require_viewer
def sensors():
    readings = services().live_readings()
    return jsonify(sensors=readings, count=len(readings))


@bp.get("/api/sensors/<sensor_id>")
@require_viewer
def sensor(sensor_id: str):
    store = services().store
    record = store.latest(sensor_id)
    if record is None:
        raise NotFound(f"sensor '{sensor_id}' has not reported")
    return jsonify({**record, "recent": store.recent(sensor_id)})


@bp.get("/api/latest/<sensor_id>")
@require_viewer
def latest(sensor_id: str):
    record = services().store.latest(sensor_id)
    if record is None:
        return jsonify(sensorId=sensor_id, found=False), 404
    return jsonify(sensorId=sensor_id, zone=record["zone"], value=record["value"],
                   latencyMs=record["latency_ms"], timestamp=record["timestamp"], found=True)


@bp.get("/api/history/<sensor_id>")
@require_viewer
def history(sensor_id: str):
    runtime = services()
    query = build_query(sensor_id, request.args, runtime.clock())
    points, capped = runtime.history.query(query)
    return jsonify(sensor_id=sensor_id, points=points, capped=capped,
                   every=request.args.get("every"), fn=query.fn)


@bp.get("/api/network")
@require_viewer
def network():
    return jsonify(services().network_view())


@bp.get("/api/health")
def health():
    return jsonify(services().health())


@bp.get("/api/status")
@require_viewer
def status():
    return jsonify(services().status())


@bp.get("/api/routing")
@require_viewer
def routing():
    return jsonify(services().engine.view())


@bp.get("/api/decisions")
@require_viewer
def decisions():
    return jsonify(decisions=services().store.decisions(_limit(10, 500)))


@bp.get("/api/alerts")
@require_viewer
def alerts():
    state = request.args.get("state", "active")
    if state not in ("active", "all"):
        raise InvalidInput("bad state", [{"field": "state", "message": "active or all"}])
    return jsonify(alerts=services().alerts.listing(include_cleared=state == "all"))


@bp.get("/api/wqi")
@require_viewer
def wqi():
    return jsonify(stations=services().wqi())


@bp.get("/api/forecast")
@require_viewer
def forecast():
    runtime = services()
    return jsonify(runtime.forecaster.view(runtime.clock()))
