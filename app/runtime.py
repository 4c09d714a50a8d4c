"""The running services of one app, built by `create_app` and started by `run.py`.

It holds no state of its own beyond references: the store, history, pipeline
and friends each own theirs. `start()`/`stop()` bracket the background tasks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from app.config import Settings
from app.logs import LogRing
from app.realtime.broadcaster import Broadcaster
from app.security import Credentials
from app.services.history import HistoryRepository
from app.services.metrics import Metrics
from app.services.alerts import AlertBook
from app.services.commands import CommandPublisher
from app.services.controls import ControlService
from app.services.engine import DecisionEngine
from app.services.forecast import DemandForecaster
from app.services.network import Network
from app.services.simulator import Simulator
from app.services.health import network_score
from app.services.wqi import WqiStations
from app.services.pipeline import IngestPipeline
from app.services.store import DataStore

if TYPE_CHECKING:
    from app.adapters.mqtt import MqttLink
    from app.services.device_commands import CommandBook
    from app.services.device_registry import DeviceRegistry
    from app.services.telemetry import TelemetryService

logger = logging.getLogger(__name__)

# A registered sensor that misses this many reports in a row is shown as stale.
STALE_INTERVALS = 3
# Alert transitions read back from history at start-up to rebuild open alerts.
ALERTS_REPLAYED = 5000


@dataclass
class Runtime:
    settings: Settings
    store: DataStore
    history: HistoryRepository
    pipeline: IngestPipeline
    broadcaster: Broadcaster
    metrics: Metrics
    tokens: Credentials
    network: Network
    simulator: Simulator | None
    controls: ControlService
    alerts: AlertBook
    engine: DecisionEngine
    commands: CommandPublisher
    mqtt: MqttLink | None = None
    forecaster: DemandForecaster | None = None
    logs: LogRing | None = None
    wqi_stations: WqiStations = field(default_factory=WqiStations)
    sources: object | None = None       # app.adapters.sources.scheduler.SourceScheduler
    prometheus: object | None = None
    cluster: object | None = None   # a ClusterNode when REDIS_URL is set
    devices: DeviceRegistry | None = None
    device_commands: CommandBook | None = None
    telemetry: TelemetryService | None = None
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    # Components that have start()/stop(), in start order.
    components: list = field(default_factory=list)

    def start(self) -> None:
        try:
            reopened = self.alerts.restore(self.history.events("alert", ALERTS_REPLAYED))
            if reopened:
                logger.info("reopened %d alert(s) recorded as open before the restart", reopened)
        except Exception as error:   # history down at start-up: start anyway
            logger.warning("could not rebuild open alerts from history: %s", error)
        for component in self.components:
            component.start()

    def stop(self) -> None:
        """Stop background work, then flush buffers. Safe to call once at exit."""
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception:
                logger.exception("stopping %s failed", type(component).__name__)

    def audit_source_refresh(self, source_id: str, operator: str, source_ip: str | None,
                             status: dict) -> None:
        """An operator's fetch-now joins the audit trail (the `control` measurement)."""
        result = status["status"]
        logger.info("operator %s refreshed source %s: %s", operator, source_id, result)
        self.history.write_event(
            "control", {"action": "refresh_source", "target": source_id, "operator": operator,
                        "origin": "operator"},
            {"value": "", "reason": (status.get("last_error") or {}).get("reason", "")
             if result != "ok" else "", "result": result, "source_ip": source_ip or ""},
            self.clock())

    # -- views used by the API and the snapshot -----------------------------
    def stale_after(self, record: dict) -> float:
        """Registered sensors are stale after missing STALE_INTERVALS reports.

        An external source's readings are stale after it missed as many fetches.
        """
        source = record.get("source", "sensor")
        if source != "sensor" and self.sources is not None:
            every = self.sources.interval_of(source)
            if every:
                return max(self.settings.stale_after_s, STALE_INTERVALS * every)
        interval = self.network.interval(record["sensor_id"])
        return STALE_INTERVALS * interval if interval else self.settings.stale_after_s

    def network_view(self) -> dict:
        view = self.network.to_api(self.controls.link_status(), self.controls.link_settings())
        for node in view["nodes"]:   # the map shows isolated nodes apart
            if node["id"] in self.controls.isolated:
                node["status"] = "isolated"
        devices = self.mqtt.devices if self.mqtt else {}
        if devices:   # a device named after a sensor or its node reports its presence
            for sensor in view["sensors"]:
                device = devices.get(sensor["id"]) or devices.get(sensor["node"])
                if device:
                    sensor["device_state"] = device["state"]
        return view

    def live_readings(self) -> list[dict]:
        return self.store.all_latest(self.stale_after)

    def snapshot(self) -> dict:
        return {
            "sensors": self.live_readings(),
            "routing": self.store.routing,
            "decisions": self.store.decisions(50),
            "alerts": self.alerts.listing(include_cleared=False),
            "health": self.health(),
            "wqi": self.wqi(),
            "forecast": self.forecaster.view(self.clock()) if self.forecaster else None,
        }

    def wqi(self) -> list[dict]:
        """WQI of every station whose live readings include enough quality parameters."""
        return self.wqi_stations.indices(self.store.latest)

    def health(self) -> dict:
        services = {"influxdb": self.history.health() if self.history.name == "influxdb" else "disabled",
                    "mqtt": self.commands.health(),
                    "routing": self.engine.status}
        cluster = self.cluster.health() if self.cluster else None
        if cluster and not cluster["is_leader"]:   # the leader plans; show its plan's state
            services["routing"] = (self.store.routing or {}).get("status", "pending")
        if cluster:
            services["redis"] = cluster["redis"]
        degraded = any(state == "down" for state in services.values()) or \
            services["influxdb"] == "degraded"
        # Health runs every monitor round: count, don't build the whole listing.
        stale = self.store.stale_count(self.stale_after)
        sensors = self.store.sensor_count()
        open_alerts = self.alerts.open_alerts()
        short = self.engine.zones_in_shortfall()
        score, reasons = network_score(open_alerts, short, stale, sensors)
        stations = self.wqi()
        worst = min(stations, key=lambda s: s["wqi"]) if stations else None
        return {
            "status": "degraded" if degraded else "ok",
            "network": {"score": score, "active_alerts": len(open_alerts),
                        "critical_alerts": sum(a["severity"] == "critical" for a in open_alerts),
                        "zones_in_shortfall": len(short), "sensors": sensors,
                        "stale_sensors": stale, "reasons": reasons,
                        "wqi_worst": {"node_id": worst["node_id"], "wqi": worst["wqi"],
                                      "band": worst["band"]} if worst else None},
            "services": services,
            **({"cluster": cluster} if cluster else {}),
            "history": self.history.health_detail(),
        }

    def routing_view(self) -> dict:
        """The current plan: the engine's own, or in a cluster the leader's as shared."""
        if self.cluster is not None and not self.cluster.leadership.is_leader and self.store.routing:
            return self.store.routing
        return self.engine.view()

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready once started and, in a cluster, once live state is rebuilt."""
        if self.cluster is None:
            return True, []
        return self.cluster.ready, self.cluster.waiting_for()

    def status(self) -> dict:
        return {
            "uptime_s": round(self.clock() - self.started_at, 1),
            "clients": self.store.clients,
            "sensors": self.store.sensor_count(),
            "readings": {"ingested": self.metrics.summary("ingested"),
                         "rejected": self.metrics.summary("rejected")},
            "broadcast": {"frames": self.metrics.counter("frames").total,
                          "tick_late_ms": self.broadcaster.tick_lateness_ms()},
            "decisions": {"solves": self.engine.solves, "last_solve_ms": self.engine.last_solve_ms,
                          "status": self.engine.status, "mode": self.controls.mode},
            "history": self.history.status(),
            "mqtt": self.mqtt.status() if self.mqtt else {"state": "disabled"},
        }
