"""Fusion of sources: which reading is the live value of a station's metric.

Readings carry `source`: `sensor` (our devices), `api:<id>` (an agency API),
`satellite:<id>` (a scene index) or `forecast`. When several give the same
station and metric, the live value is the highest-priority *fresh* one:
observed within the fusion window and, for a sensor, not stale by its own
reporting interval. With nothing fresh, the newest reading is shown (and is
marked stale by the read view). Every reading still goes to history with its
source tag; only the live choice is made here.

External readings of a station and metric take the id of the sensor that
measures it (registered in the network, or learned from device readings with
that `node_id`), so the live state has one entry per station and metric, and
it says which source it shows.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from app.domain.records import SENSOR_SOURCE as SENSOR
from app.domain.records import Reading

FORECAST = "forecast"
API_PREFIX = "api:"
SATELLITE_PREFIX = "satellite:"
# Lower ranks win: sensors over APIs over satellite over forecast (the seeds' rule).
_RANK_SENSOR, _RANK_API, _RANK_SATELLITE, _RANK_FORECAST = range(4)


def rank(source: str) -> int:
    if source == SENSOR:
        return _RANK_SENSOR
    if source.startswith(API_PREFIX):
        return _RANK_API
    if source.startswith(SATELLITE_PREFIX):
        return _RANK_SATELLITE
    return _RANK_FORECAST


class Candidate(NamedTuple):
    record: Reading
    received: float       # when it reached us (epoch seconds)


def choose(candidates: dict[str, Candidate], now: float, window_s: float,
           stale_after: Callable[[Reading], float]) -> Candidate:
    """The live candidate among one sensor's latest reading per source."""
    best: Candidate | None = None
    for source, candidate in candidates.items():
        age = now - candidate.record.ts
        fresh = age <= window_s
        if fresh and source == SENSOR:
            # A sensor that has missed its reports gives way even inside the window.
            fresh = now - candidate.received <= stale_after(candidate.record)
        if fresh and (best is None or (rank(source), -candidate.record.ts)
                      < (rank(best.record.source), -best.record.ts)):
            best = candidate
    if best is not None:
        return best
    return max(candidates.values(), key=lambda c: c.record.ts)


class SensorIndex:
    """Which sensor id measures a station's metric, so external readings land on it."""

    def __init__(self, known: dict[tuple[str, str], str] | None = None):
        self._ids: dict[tuple[str, str], str] = dict(known or {})

    def learn(self, records: list[Reading]) -> None:
        """Pipeline hook: devices reporting for an ad-hoc `node_id` name its sensors."""
        ids = self._ids
        for record in records:
            node = record.node_id
            if node and record.source == SENSOR:
                ids.setdefault((node, record.metric), record.sensor_id)

    def sensor_for(self, node_id: str, metric: str) -> str:
        """The sensor measuring `metric` at `node_id`, or a stable id of our own for it."""
        return self._ids.get((node_id, metric)) or f"{node_id}.{metric}"
