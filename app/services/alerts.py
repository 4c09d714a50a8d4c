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
from app.services.ids import id_prefix

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
        self._prefix = id_prefix(clock)
        # Called with each transition, after it is recorded and broadcast.
        self.listeners: list[Callable[[dict], None]] = []

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

    def restore(self, events: list[dict]) -> int:
        """Reopen alerts whose latest recorded state (events newest first) is open.

        Returns how many were reopened. Used at start-up, so a restart does
        not forget an alert an operator has not yet seen cleared.
        """
        latest: dict[str, dict] = {}
        for event in events:
            if event.get("id") and event.get("subject") and event["id"] not in latest:
                latest[event["id"]] = event
        reopened = 0
        with self._lock:
            for event in latest.values():
                if event.get("state") not in ("active", "acknowledged"):
                    continue
                key = (event["subject"], event["condition"])
                if key in self._open:
                    continue
                self._open[key] = {
                    "id": event["id"], "condition": event["condition"], "subject": event["subject"],
                    "severity": event.get("severity", "warning"), "state": event["state"],
                    "raised_at": event.get("raised_at") or event.get("time"),
                    "acknowledged_by": event.get("acknowledged_by") or None, "cleared_at": None,
                    "count": 1, "message": event.get("message", ""),
                    "sensor_id": event.get("sensor_id") or None, "node_id": event.get("node_id") or None,
                    "metric": event.get("metric") or None, "value": event.get("value"),
                    "threshold": event.get("threshold"), "restored": True}
                reopened += 1
        return reopened

    def _transition(self, alert: dict) -> None:
        self.record(alert)
        self.broadcast("alert", alert)
        for listener in self.listeners:
            listener(alert)
