"""The core's records: typed, slotted dataclasses the services pass around.

Each record is what the core knows of a thing, not how a client sees it: the
wire shape is made from it by one serializer per resource (app/wire.py), and
an adapter that stores or ships a record (InfluxDB lines, the cluster's log)
turns it into its own format at the edge. Validated input (app/models.py)
builds records; nothing in the core reads a reading as a dict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# -- readings ------------------------------------------------------------------------

# The provenance of our own devices' readings (app/services/fusion.py names the others).
SENSOR_SOURCE = "sensor"
# Data quality's flag of a reading nobody has flagged otherwise.
GOOD = "good"


@dataclass(slots=True, kw_only=True)
class Reading:
    """One accepted measurement, as the live store, analysis and history see it.

    Built by the ingest pipeline from a validated `app.models.Reading` (or read
    back from the cluster's log or history). Not frozen: data quality sets
    `quality` before the batch is stored; once stored, the same object is the
    live value, the history line's source and the broadcast, so nothing
    changes it afterwards.
    """

    sensor_id: str
    value: float
    # The registry's metric when the device did not say (`value` when nobody knows).
    metric: str
    unit: str | None = None
    node_id: str | None = None
    zone: str | None = None
    # When it was measured, twice: `ts` in epoch seconds for comparing and
    # storing, `timestamp` the same instant as ISO 8601 UTC text for clients.
    timestamp: str
    ts: float
    # The device's own measure of its link delay, when it sends one.
    latency_ms: float | None = None
    # Provenance for fusion and history: `sensor`, `api:<id>`, `satellite:<id>`
    # or `forecast` (app/services/fusion.py).
    source: str = SENSOR_SOURCE
    # good, suspect or bad (app/services/data_quality.py), and why when not good.
    quality: str = GOOD
    quality_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON for the cluster's log and outbox (with its `ts`).

        The keys and their order are what instances have always exchanged, so
        instances of different versions read each other's batches.
        """
        out = {"sensor_id": self.sensor_id, "value": self.value, "metric": self.metric,
               "unit": self.unit, "node_id": self.node_id, "zone": self.zone,
               "timestamp": self.timestamp, "ts": self.ts, "latency_ms": self.latency_ms,
               "source": self.source, "quality": self.quality}
        if self.quality_reason is not None:
            out["quality_reason"] = self.quality_reason
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Reading":
        """A record from `to_dict`'s JSON (another instance's batch); unknown keys are ignored."""
        return cls(sensor_id=data["sensor_id"], value=data["value"],
                   metric=data.get("metric") or "value", unit=data.get("unit"),
                   node_id=data.get("node_id"), zone=data.get("zone"),
                   timestamp=data["timestamp"], ts=data["ts"], latency_ms=data.get("latency_ms"),
                   source=data.get("source") or SENSOR_SOURCE, quality=data.get("quality") or GOOD,
                   quality_reason=data.get("quality_reason"))


@dataclass(slots=True, frozen=True)
class LiveReading:
    """A sensor's live reading in a listing (GET /api/sensors, the `/live` snapshot)."""

    reading: Reading
    received_at: float    # epoch seconds: when the server last heard from the sensor
    stale: bool           # missed its reports (app/services/views.py says how many)
