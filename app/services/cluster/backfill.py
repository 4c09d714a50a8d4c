"""Live state from history where the shared stream no longer reaches.

The stream keeps STREAM_MAXLEN batches. A sensor that last reported before
the oldest of them would be missing from a restarted instance's live store,
so its latest reading is read back from history (one `last` per sensor).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Iterable

from app.domain.clock import iso
from app.domain.records import Reading
from app.services.history import HistoryQuery, HistoryRepository

logger = logging.getLogger(__name__)

# How far back a sensor's last reading is looked for (s): a day covers
# every reporting interval in the network model many times over.
LOOKBACK_S = 24 * 3600.0


def latest_from_history(history: HistoryRepository, sensor_ids: Iterable[str],
                        defaults: Callable[[str], dict | None], now: float) -> list[Reading]:
    """Records of the latest point of each sensor in history (those that have one)."""
    records = []
    for sensor_id in sensor_ids:
        try:
            points, _ = history.query(HistoryQuery(sensor_id, now - LOOKBACK_S, now,
                                                   every=None, fn=None, limit=1))
        except Exception as error:   # history down: live state fills in as readings come
            logger.warning("no history for %s to rebuild from: %s", sensor_id, error)
            return records
        if not points:
            continue
        last = points[-1]
        known = defaults(sensor_id) or {}
        ts = datetime.fromisoformat(last["t"].replace("Z", "+00:00")).timestamp()
        records.append(Reading(sensor_id=sensor_id, value=last["v"],
                               metric=known.get("metric") or "value", unit=known.get("unit"),
                               node_id=known.get("node_id"), zone=known.get("zone"),
                               timestamp=iso(ts), ts=ts))
    return records
