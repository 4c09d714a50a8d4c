"""Read models over the live services: what the API, `/live`'s snapshot and health show.

Nothing here holds state; each view reads the services it is given.
"""
from __future__ import annotations

from typing import Callable

from app.domain.clock import Clock, iso
from app.domain.records import SENSOR_SOURCE, LiveReading, Reading, Routing
from app.services.alerts import AlertBook
from app.services.commands import CommandPublisher
from app.services.controls import ControlService
from app.services.engine import DecisionEngine
from app.services.forecast import DemandForecaster
from app.services.health import network_score
from app.services.history import HistoryRepository
from app.services.metrics import HISTORY_STATES, Metrics, readings_summary
from app.services.network import MISSED_REPORTS, Network
from app.services.store import DataStore
from app.services.wqi import WqiStations



class LiveViews:
    def __init__(self, network: Network, store: DataStore, history: HistoryRepository,
                 alerts: AlertBook, controls: ControlService, engine: DecisionEngine,
                 forecaster: DemandForecaster, commands: CommandPublisher, metrics: Metrics,
                 wqi_stations: WqiStations, *, stale_after_s: float, clock: Clock,
                 devices: Callable[[], dict] = dict,
                 mqtt_status: Callable[[], dict] = lambda: {"state": "disabled"},
                 sources=None, cluster=None):
        self.network = network
        self.store = store
        self.history = history
        self.alerts = alerts
        self.controls = controls
        self.engine = engine
        self.forecaster = forecaster
        self.commands = commands
        self.metrics = metrics
        self.wqi_stations = wqi_stations
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.devices = devices
        self.mqtt_status = mqtt_status
        # app.adapters.sources.scheduler.SourceScheduler, when external sources run.
        self.sources = sources
        # A ClusterNode when REDIS_URL is set.
        self.cluster = cluster

    def stale_after(self, record: Reading) -> float:
        """Registered sensors are stale after missing MISSED_REPORTS reports.

        An external source's readings are stale after it missed as many fetches.
        """
        source = record.source
        if source != SENSOR_SOURCE and self.sources is not None:
            every = self.sources.interval_of(source)
            if every:
                return max(self.stale_after_s, MISSED_REPORTS * every)
        interval = self.network.interval(record.sensor_id)
        return MISSED_REPORTS * interval if interval else self.stale_after_s

    def network_view(self) -> dict:
        view = self.network.to_api(self.controls.link_status(), self.controls.link_settings())
        for node in view["nodes"]:   # the map shows isolated nodes apart
            if node["id"] in self.controls.isolated:
                node["status"] = "isolated"
        devices = self.devices()
        if devices:   # a device named after a sensor or its node reports its presence
            for sensor in view["sensors"]:
                device = devices.get(sensor["id"]) or devices.get(sensor["node"])
                if device:
                    sensor["device_state"] = device["state"]
        return view

    def live_readings(self) -> list[LiveReading]:
        return self.store.all_latest(self.stale_after)

    def snapshot(self) -> dict:
        return {
            "sensors": self.live_readings(),
            "routing": self.store.routing,
            "decisions": self.store.decisions(50),
            "alerts": self.alerts.listing(include_cleared=False),
            "health": self.health(),
            "wqi": self.wqi(),
            "forecast": self.forecaster.view(self.clock()),
            # The dashboard's ages and shelf ends follow the server's clock (a time-lapse runs faster).
            "clock": {"now": iso(self.clock()), "rate": self.clock.rate},
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
            services["routing"] = self.store.routing.status if self.store.routing else "pending"
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
                        "critical_alerts": sum(a.severity == "critical" for a in open_alerts),
                        "zones_in_shortfall": len(short), "sensors": sensors,
                        "stale_sensors": stale, "reasons": reasons,
                        "wqi_worst": {"node_id": worst["node_id"], "wqi": worst["wqi"],
                                      "band": worst["band"]} if worst else None},
            "services": services,
            **({"cluster": cluster} if cluster else {}),
            "history": self.history.health_detail(),
        }

    def routing_view(self) -> Routing:
        """The current plan: the engine's own, or in a cluster the leader's as shared."""
        if self.cluster is not None and not self.cluster.leadership.is_leader and self.store.routing:
            return self.store.routing
        return self.engine.view()

    def plan_view(self) -> dict:
        """The receding-horizon plan, every step (/api/routing is its first)."""
        return self.engine.plan_view()

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready once started and, in a cluster, once live state is rebuilt."""
        if self.cluster is None:
            return True, []
        return self.cluster.ready, self.cluster.waiting_for()

    def status(self) -> dict:
        """Server metrics, made from one collection of the app's registry (what /metrics shows)."""
        samples = self.metrics.read()
        history = self.history.status()
        for state in HISTORY_STATES:
            if state in history:
                history[state] = _count(samples.value("bhs_history_points", state=state))
        if "rejected" in history:
            history["rejected"] = {reason: _count(total) for reason, total in
                                   samples.by("history_points_rejected_total", "reason").items()}
        mqtt = self.mqtt_status()
        if mqtt.get("state") != "disabled":
            mqtt.update(messages_in=_count(samples.value("bhs_mqtt_messages_total")),
                        messages_per_second=samples.value("bhs_mqtt_messages_per_second"),
                        rejected=_count(samples.value("bhs_readings_total", outcome="rejected", source="mqtt")),
                        commands_out=_count(samples.value("bhs_mqtt_commands_total")))
        solve_s = samples.value("bhs_routing_solve_seconds", None)
        return {
            # Uptime is the process's, on the monotonic clock (not the simulated one).
            "uptime_s": round(samples.value("bhs_uptime_seconds"), 1),
            "clients": _count(samples.value("bhs_live_clients")),
            "sensors": _count(samples.value("bhs_sensors")),
            "readings": {"ingested": readings_summary(samples, self.metrics, "ingested"),
                         "rejected": readings_summary(samples, self.metrics, "rejected")},
            "broadcast": {"frames": _count(samples.value("bhs_broadcast_frames_total")),
                          "tick_late_ms": {quantile: None if late is None else round(1000 * late, 2)
                                           for quantile, late in
                                           samples.by("bhs_broadcast_tick_late_seconds", "quantile").items()}},
            "decisions": {"solves": _count(samples.value("bhs_routing_solves_total")),
                          "last_solve_ms": None if solve_s is None else round(1000 * solve_s, 3),
                          "status": self.engine.status, "mode": self.controls.mode},
            "history": history,
            "mqtt": mqtt,
        }


def _count(value: float | None) -> int | float | None:
    """A sample as JSON shows a count: 3, not 3.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
