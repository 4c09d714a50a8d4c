"""GET /metrics: Prometheus text, read from the running services at scrape time.

A custom collector on a registry of this app's own (not the process-global
default), so nothing is counted twice on the hot path and two apps in one
process never share state.
"""
from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from spectree import Response as Documented

from app.api.common import require_viewer, services
from app.api.openapi import document
from app.models import ErrorEnvelope

bp = Blueprint("metrics", __name__)


class ServicesCollector:
    """Reads the running services at scrape time (registered by the bootstrap)."""

    def __init__(self, services):
        self.services = services

    def collect(self):
        rt = self.services
        readings = CounterMetricFamily("bhs_readings", "Readings taken in or rejected, by source",
                                       labels=["outcome", "source"])
        for outcome in ("ingested", "rejected"):
            for source, total in rt.metrics.summary(outcome)["by_source"].items():
                readings.add_metric([outcome, source], total)
        yield readings
        history = rt.history.status()
        writes = GaugeMetricFamily("bhs_history_points", "History points by state", labels=["state"])
        for state in ("queued", "written", "spooled", "failed"):
            writes.add_metric([state], history.get(state, 0) or 0)
        yield writes
        rejected = CounterMetricFamily("history_points_rejected", "History points InfluxDB refused "
                                       "(or the full spool dropped), by reason", labels=["reason"])
        for reason, total in (history.get("rejected") or {}).items():
            rejected.add_metric([reason], total)
        yield rejected
        yield GaugeMetricFamily("bhs_history_up", "1 when the history store is reachable",
                                value=0 if rt.history.health() == "down" else 1)
        mqtt = rt.mqtt.status() if rt.mqtt else None
        yield GaugeMetricFamily("bhs_mqtt_connected", "1 when connected to the broker",
                                value=1 if mqtt and mqtt["state"] == "connected" else 0)
        if mqtt:
            yield CounterMetricFamily("bhs_mqtt_messages", "MQTT messages ingested", value=mqtt["messages_in"])
            yield CounterMetricFamily("bhs_mqtt_rejected", "MQTT messages rejected", value=mqtt["rejected"])
            yield GaugeMetricFamily("bhs_mqtt_messages_per_second", "MQTT messages per second",
                                    value=mqtt["messages_per_second"])
        yield GaugeMetricFamily("bhs_live_clients", "Connected /live clients", value=rt.store.clients)
        yield CounterMetricFamily("bhs_broadcast_frames", "sensor_update frames sent",
                                  value=rt.metrics.counter("frames").total)
        yield GaugeMetricFamily("bhs_sensors", "Distinct sensors held", value=rt.store.sensor_count())
        yield CounterMetricFamily("bhs_routing_solves", "Routing plans solved", value=rt.engine.solves)
        yield GaugeMetricFamily("bhs_routing_solve_seconds", "Duration of the last routing solve",
                                value=(rt.engine.last_solve_ms or 0) / 1000)
        alerts = GaugeMetricFamily("bhs_active_alerts", "Open alerts by severity", labels=["severity"])
        open_alerts = rt.alerts.open_alerts()
        for severity in ("warning", "critical"):
            alerts.add_metric([severity], sum(a["severity"] == severity for a in open_alerts))
        yield alerts


@bp.get("/metrics")
@document(resp=Documented(HTTP_200=None, HTTP_401=ErrorEnvelope, HTTP_403=ErrorEnvelope),
          tags=["operations"], security=[{"viewer": []}, {}])
@require_viewer
def metrics():
    return Response(generate_latest(services().prometheus), mimetype="text/plain; version=0.0.4")
