"""Embedded history: bounded rings in memory, the default when no InfluxDB is set.

It answers the same history queries as InfluxDB, so the API and the dashboard
work unchanged on a laptop. Memory is bounded: a fixed number of points per
sensor and events per measurement.
"""
from __future__ import annotations

import threading
from collections import defaultdict, deque

from app.services.history import HistoryQuery, HistoryRepository, bucket_start
from app.services.store import iso

# About 6 hours of 5-second readings per sensor.
POINTS_PER_SENSOR = 4_320
EVENTS_PER_MEASUREMENT = 2_000

_AGGREGATE = {
    "mean": lambda values: sum(values) / len(values),
    "min": min,
    "max": max,
    "last": lambda values: values[-1],
    "count": len,
}


class MemoryHistory(HistoryRepository):
    name = "memory"

    def __init__(self, points_per_sensor: int = POINTS_PER_SENSOR):
        self._lock = threading.Lock()
        self._points: dict[str, deque] = defaultdict(lambda: deque(maxlen=points_per_sensor))
        self._events: dict[str, deque] = defaultdict(lambda: deque(maxlen=EVENTS_PER_MEASUREMENT))
        self.written = 0

    def write_readings(self, records: list[dict]) -> None:
        with self._lock:
            points = self._points
            for record in records:
                points[record["sensor_id"]].append((record["ts"], record["value"]))
            self.written += len(records)

    def write_event(self, measurement: str, tags: dict, fields: dict, ts: float) -> None:
        with self._lock:
            self._events[measurement].append({"time": iso(ts), **tags, **fields})

    def events(self, measurement: str, limit: int) -> list[dict]:
        with self._lock:
            items = list(self._events.get(measurement, ()))
        return items[::-1][:limit]

    def query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        with self._lock:
            series = list(self._points.get(query.sensor_id, ()))
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

    def health(self) -> str:
        return "ok"

    def status(self) -> dict:
        return {"backend": "memory", "written": self.written, "queued": 0,
                "spooled": 0, "failed": 0}
