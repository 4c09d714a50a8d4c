"""The app's instruments: one prometheus_client registry feeds /metrics and /api/status.

Every counter and gauge is defined here, once, on a registry of this app's
own that the bootstrap builds (never the process-global default, so two apps
in one process never share counts). Services count through `Metrics`; what
services already hold (queue lengths, open alerts, connected clients) is read
at collection time by `ServicesCollector`. /api/status is made from the same
samples (`Metrics.read()`), so it and /metrics cannot disagree.

prometheus_client's counters are thread-safe (each holds a lock), which
matters under ASYNC_MODE=threading where every ingest thread counts at once.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# A per-second rate is the change of a counter over about this many seconds.
RATE_WINDOW_S = 10
# How often the rate sampler notes the counters' totals.
RATE_SAMPLE_S = 1.0
# History point states shown in bhs_history_points (and /api/status's history).
HISTORY_STATES = ("queued", "written", "spooled", "failed")
# Alert severities counted in bhs_active_alerts.
COUNTED_SEVERITIES = ("warning", "critical")


class Samples:
    """One collection of a registry: sample values by name and labels."""

    def __init__(self, families: Iterable):
        self._values: dict[str, list[tuple[dict, float]]] = {}
        for family in families:
            for sample in family.samples:
                self._values.setdefault(sample.name, []).append((sample.labels, sample.value))

    def value(self, name: str, default: float | None = 0, **labels) -> float | None:
        """The one sample of `name` with these labels (exactly), or `default`."""
        for have, value in self._values.get(name, ()):
            if have == labels:
                return None if math.isnan(value) else value
        return default

    def by(self, name: str, label: str, **where) -> dict[str, float]:
        """`{label value: sample}` over samples of `name` that match `where`."""
        return {have[label]: None if math.isnan(value) else value for have, value in self._values.get(name, ())
                if label in have and all(have.get(k) == v for k, v in where.items())}


class Rates:
    """Per-second rates of counters, from their totals noted once a second.

    prometheus_client keeps totals only (Prometheus computes rate() at query
    time); /api/status shows rates too, so a sampler notes the totals and a
    rate is the change since the oldest note within RATE_WINDOW_S.
    """

    def __init__(self, read: Callable[[], dict], monotonic: Callable[[], float]):
        self.read = read
        self.monotonic = monotonic
        self._notes: deque[tuple[float, dict]] = deque()
        self._lock = threading.Lock()

    def note(self) -> None:
        now, totals = self.monotonic(), self.read()
        with self._lock:
            self._notes.append((now, totals))
            while len(self._notes) > 1 and self._notes[0][0] < now - RATE_WINDOW_S:
                self._notes.popleft()

    def rate(self, key, current: float) -> float:
        """Per second of the counter `key`, whose total is `current` now."""
        now = self.monotonic()
        with self._lock:
            oldest = self._notes[0] if self._notes else None
        if oldest is None or now - oldest[0] < RATE_SAMPLE_S:
            return 0.0
        return round(max(0.0, current - oldest[1].get(key, 0)) / (now - oldest[0]), 1)


class Metrics:
    """The instruments every service counts with, on the app's registry."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic, spawn=None, sleep=None):
        # A registry of its own when none is given (unit tests): never the global default.
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.monotonic = monotonic
        self.started_at = monotonic()
        self.readings = Counter("bhs_readings", "Readings taken in or rejected, by source",
                                ["outcome", "source"], registry=self.registry)
        self.frames = Counter("bhs_broadcast_frames", "sensor_update frames sent", registry=self.registry)
        self.mqtt_messages = Counter("bhs_mqtt_messages", "MQTT messages ingested", registry=self.registry)
        self.mqtt_commands = Counter("bhs_mqtt_commands", "Controls published to MQTT", registry=self.registry)
        self.solves = Counter("bhs_routing_solves", "Routing plans solved", registry=self.registry)
        self.solve_seconds = Gauge("bhs_routing_solve_seconds", "Duration of the last routing solve",
                                   registry=self.registry)
        self.solve_seconds.set(math.nan)   # no solve yet
        Gauge("bhs_uptime_seconds", "Seconds since this app was built", registry=self.registry) \
            .set_function(lambda: self.monotonic() - self.started_at)
        self._children: dict[tuple[str, str], object] = {}
        self._children_lock = threading.Lock()
        self.rates = Rates(self.counter_totals, monotonic)
        self._spawn, self._sleep = spawn, sleep
        self._running = False

    # -- counting (the ingest hot path: one dict lookup and a locked add) --------------
    def _reading(self, outcome: str, source: str):
        child = self._children.get((outcome, source))
        if child is None:
            with self._children_lock:
                child = self._children.setdefault((outcome, source), self.readings.labels(outcome, source))
        return child

    def accepted(self, source: str, count: int = 1) -> None:
        self._reading("ingested", source).inc(count)

    def rejected(self, source: str, count: int = 1) -> None:
        self._reading("rejected", source).inc(count)

    def frame(self) -> None:
        self.frames.inc()

    def mqtt_message(self, count: int = 1) -> None:
        self.mqtt_messages.inc(count)

    def mqtt_command(self) -> None:
        self.mqtt_commands.inc()

    def solved(self, solve_ms: float | None) -> None:
        self.solves.inc()
        self.solve_seconds.set((solve_ms or 0) / 1000)

    # -- reading ----------------------------------------------------------------------
    def read(self) -> Samples:
        """Every sample of the registry, collected once."""
        return Samples(self.registry.collect())

    def total(self, outcome: str, source: str) -> float:
        return self.counter_totals().get(("readings", outcome, source), 0)

    def counter_totals(self) -> dict:
        """The totals that have rates: readings by (outcome, source), and MQTT messages."""
        totals = {}
        for family in (*self.readings.collect(), *self.mqtt_messages.collect()):
            for sample in family.samples:
                if sample.name == "bhs_readings_total":
                    totals["readings", sample.labels["outcome"], sample.labels["source"]] = sample.value
                elif sample.name == "bhs_mqtt_messages_total":
                    totals["mqtt_messages"] = sample.value
        return totals

    def readings_rate(self, outcome: str, source: str, total: float) -> float:
        return self.rates.rate(("readings", outcome, source), total)

    def mqtt_rate(self) -> float:
        return self.rates.rate("mqtt_messages", self.counter_totals().get("mqtt_messages", 0))

    # -- the rate sampler (a component: start/stop) -----------------------------------
    def start(self) -> None:
        if self._spawn is None or self._running:
            return
        self._running = True
        self._spawn(self._sample)

    def stop(self) -> None:
        self._running = False

    def _sample(self) -> None:
        while self._running:
            self.rates.note()
            self._sleep(RATE_SAMPLE_S)


def readings_summary(samples: Samples, metrics: Metrics, outcome: str) -> dict:
    """`{"total", "per_second", "by_source"}` of one outcome, from the registry's samples."""
    by_source = {source: int(total) for source, total in
                 sorted(samples.by("bhs_readings_total", "source", outcome=outcome).items())}
    per_second = sum(metrics.readings_rate(outcome, source, total) for source, total in by_source.items())
    return {"total": sum(by_source.values()), "per_second": round(per_second, 1), "by_source": by_source}


class ServicesCollector:
    """What the services hold, read at collection time (registered by the bootstrap)."""

    def __init__(self, metrics: Metrics, *, store, history, alerts, mqtt,
                 tick_lateness_ms: Callable[[], dict]):
        self.metrics = metrics
        self.store = store
        self.history = history
        self.alerts = alerts
        self.mqtt = mqtt
        self.tick_lateness_ms = tick_lateness_ms

    def collect(self):
        history = self.history.status()
        writes = GaugeMetricFamily("bhs_history_points", "History points by state", labels=["state"])
        for state in HISTORY_STATES:
            writes.add_metric([state], history.get(state, 0) or 0)
        yield writes
        rejected = CounterMetricFamily("history_points_rejected", "History points InfluxDB refused "
                                       "(or the full spool dropped), by reason", labels=["reason"])
        for reason, total in (history.get("rejected") or {}).items():
            rejected.add_metric([reason], total)
        yield rejected
        yield GaugeMetricFamily("bhs_history_up", "1 when the history store is reachable",
                                value=0 if self.history.health() == "down" else 1)
        yield GaugeMetricFamily("bhs_mqtt_connected", "1 when connected to the broker",
                                value=1 if self.mqtt is not None and self.mqtt.connected else 0)
        if self.mqtt is not None:
            yield GaugeMetricFamily("bhs_mqtt_messages_per_second", "MQTT messages per second",
                                    value=self.metrics.mqtt_rate())
            # The series dashboards already read; the same count as bhs_readings_total{rejected,mqtt}.
            yield CounterMetricFamily("bhs_mqtt_rejected", "MQTT messages rejected",
                                      value=self.metrics.counter_totals().get(("readings", "rejected", "mqtt"), 0))
        yield GaugeMetricFamily("bhs_live_clients", "Connected /live clients", value=self.store.clients)
        yield GaugeMetricFamily("bhs_sensors", "Distinct sensors held", value=self.store.sensor_count())
        late = GaugeMetricFamily("bhs_broadcast_tick_late_seconds", "How late recent broadcast ticks went "
                                 "out", labels=["quantile"])
        for quantile, ms in self.tick_lateness_ms().items():
            late.add_metric([quantile], math.nan if ms is None else ms / 1000)
        yield late
        alerts = GaugeMetricFamily("bhs_active_alerts", "Open alerts by severity", labels=["severity"])
        open_alerts = self.alerts.open_alerts()
        for severity in COUNTED_SEVERITIES:
            alerts.add_metric([severity], sum(a.severity == severity for a in open_alerts))
        yield alerts
