"""Reading records for tests and benches: the core's `Reading` with the fields a test does not care about filled in."""
from __future__ import annotations

from app.domain.clock import iso
from app.domain.records import Reading

# A fixed moment (2023-11-14T22:13:20Z) for records whose time does not matter.
SOME_TIME = 1_700_000_000.0


def reading(sensor_id: str = "S1", value: float = 1.0, ts: float = SOME_TIME, *,
            metric: str = "value", **fields) -> Reading:
    """A record as the pipeline would store it, measured at `ts` (epoch seconds)."""
    return Reading(sensor_id=sensor_id, value=value, metric=metric, ts=ts, timestamp=iso(ts), **fields)
