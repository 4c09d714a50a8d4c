"""A bounded in-memory ring of recent log records, for GET /api/logs."""
from __future__ import annotations

import logging
import threading
from collections import deque

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LogRing(logging.Handler):
    def __init__(self, capacity: int = 2000):
        super().__init__(level=logging.DEBUG)
        self._records: deque[dict] = deque(maxlen=capacity)
        self._ring_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = {"time": record.created, "level": record.levelname, "logger": record.name,
                     "message": record.getMessage()}
        except Exception:   # a bad format string must not break logging
            entry = {"time": record.created, "level": record.levelname, "logger": record.name,
                     "message": str(record.msg)}
        with self._ring_lock:
            self._records.append(entry)

    def recent(self, limit: int, min_level: str) -> list[dict]:
        floor = logging.getLevelName(min_level)
        with self._ring_lock:
            records = [r for r in self._records if logging.getLevelName(r["level"]) >= floor]
        return records[::-1][:limit]
