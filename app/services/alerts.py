"""Alerts with a lifecycle: active -> acknowledged -> cleared.

There is one alert per (subject, condition): a repeat updates it and may
escalate it from warning to critical, never duplicates it. Every transition
is broadcast and written to history. Active alerts are rebuilt at start-up
from the history store, so a restart does not forget them.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Callable

from app.errors import NotFound
from app.services.store import iso

SEVERITY_RANK = {"warning": 1, "critical": 2}
# Cleared alerts kept for `GET /api/alerts?state=all`.
CLEARED_KEPT = 500


class AlertBook:
    def __init__(self, broadcast: Callable[[str, dict], None], record: Callable[[dict], None],
                 clock: Callable[[], float] = time.time):
        self.broadcast = broadcast
        self.record = record
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], dict] = {}
        self._cleared: list[dict] = []
        self._ids = itertools.count(1)
        self._prefix = format(int(clock()), "x")

    def raise_(self, subject: str, condition: str, severity: str, message: str, **fields) -> dict:
        """Raise or update the alert on (subject, condition); returns it."""
        key = (subject, condition)
        with self._lock:
            alert = self._open.get(key)
            changed = alert is None
            if alert is None:
                alert = self._open[key] = {
                    "id": f"{self._prefix}-{next(self._ids)}", "condition": condition,
                    "subject": subject, "severity": severity, "state": "active",
                    "raised_at": iso(self.clock()), "acknowledged_by": None,
                    "cleared_at": None, "count": 0, **fields}
            elif SEVERITY_RANK[severity] > SEVERITY_RANK[alert["severity"]]:
                alert["severity"] = severity
                alert["escalated_at"] = iso(self.clock())
                changed = True
            alert.update(fields)
            alert["message"] = message
            alert["count"] += 1
            alert["updated_at"] = iso(self.clock())
            snapshot = dict(alert)
        if changed:
            self._transition(snapshot)
        return snapshot

    def clear(self, subject: str, condition: str) -> dict | None:
        with self._lock:
            alert = self._open.pop((subject, condition), None)
            if alert is None:
                return None
            alert["state"] = "cleared"
            alert["cleared_at"] = iso(self.clock())
            self._cleared.append(alert)
            del self._cleared[:-CLEARED_KEPT]
            snapshot = dict(alert)
        self._transition(snapshot)
        return snapshot

    def acknowledge(self, alert_id: str, operator: str) -> dict:
        with self._lock:
            alert = next((a for a in self._open.values() if a["id"] == alert_id), None)
            if alert is None:
                raise NotFound(f"no open alert '{alert_id}'")
            alert["state"] = "acknowledged"
            alert["acknowledged_by"] = operator
            alert["acknowledged_at"] = iso(self.clock())
            snapshot = dict(alert)
        self._transition(snapshot)
        return snapshot

    def is_open(self, subject: str, condition: str, severity: str | None = None) -> bool:
        alert = self._open.get((subject, condition))
        return alert is not None and (severity is None or alert["severity"] == severity)

    def open_alerts(self) -> list[dict]:
        with self._lock:
            return [dict(a) for a in self._open.values()]

    def listing(self, include_cleared: bool) -> list[dict]:
        with self._lock:
            alerts = [dict(a) for a in self._open.values()]
            if include_cleared:
                alerts += [dict(a) for a in reversed(self._cleared)]
        alerts.sort(key=lambda a: (a["state"] == "cleared", -SEVERITY_RANK[a["severity"]]))
        return alerts

    def restore(self, alerts: list[dict]) -> None:
        """Reopen alerts recorded as open before a restart (latest state wins)."""
        with self._lock:
            for alert in alerts:
                if alert.get("state") in ("active", "acknowledged"):
                    self._open[(alert["subject"], alert["condition"])] = dict(alert)
                else:
                    self._open.pop((alert["subject"], alert["condition"]), None)

    def _transition(self, alert: dict) -> None:
        self.record(alert)
        self.broadcast("alert", alert)
