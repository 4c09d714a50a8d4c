"""Embedded history: bounded rings in memory, the default when no InfluxDB is set.

It answers the same history queries as InfluxDB, so the API and the dashboard
work unchanged on a laptop. Memory is bounded in total, whatever senders do:
each sensor keeps up to POINTS_PER_SENSOR points, but all sensors together at
most `budget_points` (16 bytes each), so as sensors are added, each one's
ring shrinks (halving when the sensor count doubles past the budget).

It keeps its own bounded rollups (1 min for a day, 1 h for 35 days, 1 d for
400 days per sensor, same budget rule), so a month's chart works here too,
and late points land in their buckets. Raw points that have left the ring
are answered from the 1 min rollup (`raw_edge`).
"""
from __future__ import annotations

import threading
from collections import defaultdict, deque

from app.adapters.memory_rollup import RollupRing
from app.domain.clock import iso
from app.domain.records import Reading
from app.services.history import RESOLUTIONS, HistoryQuery, HistoryRepository, bucket_start
from app.services.ring import PointRing

# About 6 hours of 5-second readings per sensor ...
POINTS_PER_SENSOR = 4_320
# ... and 4 million points in all (64 MB): the bundled network's 145 sensors
# keep their full 6 hours; 20,000 sensors keep 200 points each.
BUDGET_POINTS = 4_000_000
EVENTS_PER_MEASUREMENT = 2_000
# Buckets kept per sensor and resolution: a day of minutes, 35 days of hours
# (a 30-day chart), 400 days. 56 bytes a bucket: 150 kB a sensor ...
ROLLUP_BUCKETS = {"1m": 1_440, "1h": 840, "1d": 400}
# ... and 1 million buckets (56 MB) in all; past that each sensor's rings halve.
ROLLUP_BUDGET = 1_000_000

_AGGREGATE = {
    "mean": lambda values: sum(values) / len(values),
    "min": min,
    "max": max,
    "last": lambda values: values[-1],
    "count": len,
}


class MemoryHistory(HistoryRepository):
    name = "memory"

    def __init__(self, points_per_sensor: int = POINTS_PER_SENSOR, budget_points: int = BUDGET_POINTS,
                 rollup_buckets: dict[str, int] | None = None, rollup_budget: int = ROLLUP_BUDGET):
        self._lock = threading.Lock()
        self.budget_points = budget_points
        self.ring_size = points_per_sensor
        self._points: dict[str, PointRing] = {}
        self.rollup_buckets = dict(rollup_buckets or ROLLUP_BUCKETS)
        self.rollup_budget = rollup_budget
        self._rollups: dict[str, dict[str, RollupRing]] = {}
        self._events: dict[str, deque] = defaultdict(lambda: deque(maxlen=EVENTS_PER_MEASUREMENT))
        self.written = 0

    def write_readings(self, records: list[Reading]) -> None:
        with self._lock:
            points = self._points
            for record in records:
                sid, ts, value = record.sensor_id, record.ts, record.value
                ring = points.get(sid)
                if ring is None:
                    ring = self._new_ring(sid)
                    points = self._points
                ring.append(ts, value)
                for rollup in self._rollups[sid].values():
                    rollup.add(ts, value)
            self.written += len(records)

    def _new_ring(self, sensor_id: str) -> PointRing:
        if (len(self._points) + 1) * self.ring_size > self.budget_points:
            self.ring_size = max(1, self.ring_size // 2)
            self._points = {sid: ring.resized(self.ring_size) for sid, ring in self._points.items()}
        ring = self._points[sensor_id] = PointRing(self.ring_size)
        if len(self._points) * sum(self.rollup_buckets.values()) > self.rollup_budget:
            self.rollup_buckets = {name: max(1, size // 2) for name, size in self.rollup_buckets.items()}
            self._rollups = {sid: {name: ring_.resized(self.rollup_buckets[name]) for name, ring_ in rings.items()}
                             for sid, rings in self._rollups.items()}
        self._rollups[sensor_id] = {name: RollupRing(RESOLUTIONS[name], size)
                                    for name, size in self.rollup_buckets.items()}
        return ring

    def write_event(self, measurement: str, tags: dict, fields: dict, ts: float) -> None:
        with self._lock:
            self._events[measurement].append({"time": iso(ts), **tags, **fields})

    def events(self, measurement: str, limit: int) -> list[dict]:
        with self._lock:
            items = list(self._events.get(measurement, ()))
        return items[::-1][:limit]

    def query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        if query.resolution != "raw":
            return self._rollup_query(query)
        with self._lock:
            ring = self._points.get(query.sensor_id)
            series = ring.points() if ring else []
        # Points arrive roughly in order; sort so late replays land in place.
        window = sorted(p for p in series if query.start <= p[0] < query.stop)
        if query.every is None:
            rows = [(ts, value) for ts, value in window]
        else:
            buckets: dict[float, list[float]] = {}
            for ts, value in window:
                buckets.setdefault(bucket_start(ts, query.every), []).append(value)
            aggregate = _AGGREGATE[query.fn]
            rows = [(start, aggregate(values)) for start, values in sorted(buckets.items())]
        capped = len(rows) > query.limit
        rows = rows[-query.limit:] if capped else rows
        return [{"t": iso(ts), "v": value} for ts, value in rows], capped

    def _rollup_query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        with self._lock:
            ring = self._rollups.get(query.sensor_id, {}).get(query.resolution)
            rows = ring.rows(query.start, query.stop) if ring else []
        capped = len(rows) > query.limit
        rows = rows[-query.limit:] if capped else rows
        pick = {"mean": 1, "min": 2, "max": 3, "count": 4, "last": 5}[query.fn or "mean"]
        return [{"t": iso(row[0]), "v": row[pick], "min": row[2], "max": row[3], "count": row[4]}
                for row in rows], capped

    def raw_edge(self, sensor_id: str, now: float) -> float | None:
        """Once a sensor's ring is full, older raw points are gone: the 1 min rollup answers."""
        with self._lock:
            ring = self._points.get(sensor_id)
            if ring is None or len(ring) < ring.capacity:
                return None
            return min(ts for ts, _ in ring.points())

    def health(self) -> str:
        return "ok"

    def status(self) -> dict:
        return {"backend": "memory", "written": self.written, "queued": 0,
                "spooled": 0, "failed": 0}
