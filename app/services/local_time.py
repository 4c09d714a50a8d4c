"""Local time of day of the network, for tariffs, night flow and the simulator's demand.

Bengaluru keeps India Standard Time (UTC+5:30) all year, so a fixed offset
(`LOCAL_UTC_OFFSET_H`) is exact there and avoids a time-zone database.
"""
from __future__ import annotations

HOUR_S = 3600.0
SECONDS_PER_DAY = 86_400.0


def local_hour(ts: float, utc_offset_h: float) -> float:
    """Hour of the local day (0 <= h < 24) of epoch seconds `ts`."""
    return ((ts + utc_offset_h * HOUR_S) % SECONDS_PER_DAY) / HOUR_S


def is_weekend(ts: float, utc_offset_h: float) -> bool:
    """Saturday or Sunday, local time (1970-01-01 was a Thursday)."""
    return int((ts + utc_offset_h * HOUR_S) // SECONDS_PER_DAY + 4) % 7 >= 5
