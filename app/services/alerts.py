"""Alarms by ISA-18.2: acknowledgement and clearing are independent.

An alarm has two flags, `active` (its condition is present) and
`acknowledged` (an operator has seen it), giving four states:

    active_unacknowledged  -> ack ->  active_acknowledged
          | clears                         | clears
    cleared_unacknowledged -> ack ->  cleared_acknowledged (archived)

A cleared alarm stays in the summary until it is acknowledged, so an
operator never misses a condition that came and went. A condition that
returns before that re-activates the same alarm, unacknowledged again.

Shelving hides a nuisance alarm from the operator for a chosen time; it
comes back by itself when the time is up (`schedule` runs the expiry, and
every read checks it too), and each shelve/unshelve is audited.

There is one alarm per (subject, condition): a repeat updates it and may
escalate its severity, never duplicates it. Every transition is published
as a domain event (AlertRaised, AlertCleared, AlertUpdated; app/handlers.py
broadcasts it and writes it to history, with who did it); open alarms are rebuilt at
start-up from the history store, so a restart does not forget them.

Producers use `raise_`, `clear`, `is_open` and `open_alerts`; the legacy
`state` field (active/acknowledged/cleared) stays beside `alarm_state`.
"""
from __future__ import annotations

import itertools
import threading
from typing import Callable

from app.domain.clock import Clock
from app.domain.events import (AlertAdopted, AlertCleared, AlertRaised, AlertsReset, AlertUpdated,
                               Event)
from app.errors import InvalidInput, NotFound
from app.services.store import iso
from app.services.ids import id_prefix
from app.services.local_time import SECONDS_PER_DAY

SEVERITIES = ("critical", "major", "minor", "warning")
SEVERITY_RANK = {"warning": 1, "minor": 2, "major": 3, "critical": 4}
ALARM_STATES = ("active_unacknowledged", "active_acknowledged",
                "cleared_unacknowledged", "cleared_acknowledged")
# What GET /api/alerts?state= filters on. active: the condition is present (the contract's
# original meaning); open: everything an operator still has to see, cleared-but-unacknowledged
# included; all: with the archive; or one alarm state, or shelved.
STATE_FILTERS = ("active", "open", "all", "shelved", *ALARM_STATES)
# Archived (cleared and acknowledged) alarms kept for `GET /api/alerts?state=all`.
CLEARED_KEPT = 500
# Shelving bounds: ISA-18.2 wants a shelf with a time limit; a shift is 8 h,
# a day the longest an alarm may stay hidden without an operator renewing it.
SHELVE_MIN_S = 1.0
SHELVE_MAX_S = SECONDS_PER_DAY
# Audit entries kept on each alarm (who acknowledged, shelved, ...).
EVENTS_KEPT = 50
SYSTEM = "system"


def legacy_state(alarm: dict) -> str:
    """The contract's original three states, kept for existing clients."""
    if not alarm["active"]:
        return "cleared"
    return "acknowledged" if alarm["acknowledged"] else "active"


def alarm_state(alarm: dict) -> str:
    return (f"{'active' if alarm['active'] else 'cleared'}_"
            f"{'acknowledged' if alarm['acknowledged'] else 'unacknowledged'}")


class AlertBook:
    def __init__(self, publish: Callable[[Event], None], clock: Clock,
                 schedule: Callable[[float, Callable[[], None]], None] | None = None):
        self.publish = publish
        self.clock = clock
        # schedule(delay_s, fn): runs fn later (a background task); shelf expiry.
        self.schedule = schedule
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], dict] = {}      # not yet cleared-and-acknowledged
        self._cleared: list[dict] = []                    # archived
        self._ids = itertools.count(1)
        self._prefix = id_prefix(clock)

    # -- producers ---------------------------------------------------------------
    def raise_(self, subject: str, condition: str, severity: str, message: str, **fields) -> dict:
        """Raise or update the alarm on (subject, condition); returns it."""
        if severity not in SEVERITY_RANK:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        key = (subject, condition)
        now = iso(self.clock())
        action = None
        with self._lock:
            alarm = self._open.get(key)
            if alarm is None:
                alarm = self._open[key] = {
                    "id": f"{self._prefix}-{next(self._ids)}", "condition": condition,
                    "subject": subject, "severity": severity, "active": True,
                    "acknowledged": False, "raised_at": now, "acknowledged_by": None,
                    "acknowledged_at": None, "cleared_at": None, "shelved": False,
                    "shelved_until": None, "shelved_by": None, "shelve_reason": None,
                    "count": 0, "events": [], **fields}
                action = "raised"
            elif not alarm["active"]:
                # Back before anyone acknowledged the clearing: active and unseen again.
                alarm.update(active=True, acknowledged=False, acknowledged_by=None,
                             acknowledged_at=None, cleared_at=None, severity=severity)
                action = "reactivated"
            elif SEVERITY_RANK[severity] > SEVERITY_RANK[alarm["severity"]]:
                alarm["severity"] = severity
                alarm["escalated_at"] = now
                action = "escalated"
            alarm.update(fields)
            alarm["message"] = message
            alarm["count"] += 1
            alarm["updated_at"] = now
            if action:
                self._log(alarm, action, SYSTEM)
            snapshot = self._public(alarm)
        if action:
            self._transition(snapshot)
        return snapshot

    def clear(self, subject: str, condition: str) -> dict | None:
        """The condition has gone. An acknowledged alarm is archived; an
        unacknowledged one waits, cleared, for its acknowledgement."""
        with self._lock:
            alarm = self._open.get((subject, condition))
            if alarm is None or not alarm["active"]:
                return None
            alarm["active"] = False
            alarm["cleared_at"] = iso(self.clock())
            if alarm["acknowledged"]:
                self._archive((subject, condition))
            self._log(alarm, "cleared", SYSTEM)     # after the unshelving archiving implies
            snapshot = self._public(alarm)
        self._transition(snapshot)
        return snapshot

    def is_open(self, subject: str, condition: str, severity: str | None = None) -> bool:
        """Whether the condition is present (active), whatever its acknowledgement."""
        alarm = self._open.get((subject, condition))
        return alarm is not None and alarm["active"] and (severity is None or alarm["severity"] == severity)

    def open_alerts(self) -> list[dict]:
        """Alarms whose condition is present, shelved ones included (planning still sees them)."""
        with self._lock:
            return [self._public(a) for a in self._open.values() if a["active"]]

    # -- operators ---------------------------------------------------------------
    def acknowledge(self, alert_id: str, operator: str) -> dict:
        with self._lock:
            key, alarm = self._find(alert_id)
            if alarm["acknowledged"]:
                return self._public(alarm)          # idempotent: the first operator stays
            alarm.update(acknowledged=True, acknowledged_by=operator,
                         acknowledged_at=iso(self.clock()))
            if not alarm["active"]:
                self._archive(key)
            self._log(alarm, "acknowledged", operator)
            snapshot = self._public(alarm)
        self._transition(snapshot)
        return snapshot

    def acknowledge_many(self, alert_ids: list[str], operator: str) -> list[dict]:
        """Acknowledge all of `alert_ids` ("acknowledge all visible"); unknown ids are skipped."""
        done = []
        for alert_id in alert_ids:
            try:
                done.append(self.acknowledge(alert_id, operator))
            except NotFound:
                continue
        return done

    def shelve(self, alert_id: str, operator: str, duration_s: float, reason: str | None = None) -> dict:
        if not SHELVE_MIN_S <= duration_s <= SHELVE_MAX_S:
            raise InvalidInput("invalid shelve", [{"field": "duration_s", "message":
                               f"seconds from {SHELVE_MIN_S:g} to {SHELVE_MAX_S:g} (24 h), e.g. 3600"}])
        until = self.clock() + duration_s
        with self._lock:
            key, alarm = self._find(alert_id, archived_ok=False)
            alarm.update(shelved=True, shelved_until=iso(until), shelved_by=operator,
                         shelve_reason=reason, _shelved_until_ts=until)
            self._log(alarm, "shelved", operator, f"for {duration_s:g} s" + (f": {reason}" if reason else ""))
            snapshot = self._public(alarm)
        self._transition(snapshot)
        if self.schedule is not None:
            self.schedule(duration_s, self.expire_shelves)
        return snapshot

    def unshelve(self, alert_id: str, operator: str) -> dict:
        with self._lock:
            key, alarm = self._find(alert_id, archived_ok=False)
            if not alarm["shelved"]:
                return self._public(alarm)
            self._unshelve(alarm, operator, "unshelved")
            snapshot = self._public(alarm)
        self._transition(snapshot)
        return snapshot

    def expire_shelves(self) -> list[dict]:
        """Return every alarm whose shelf time is up; audited as done by the system."""
        now = self.clock()
        returned = []
        with self._lock:
            for alarm in self._open.values():
                if alarm["shelved"] and alarm["_shelved_until_ts"] <= now:
                    self._unshelve(alarm, SYSTEM, "shelf_expired")
                    returned.append(self._public(alarm))
        for snapshot in returned:
            self._transition(snapshot)
        return returned

    def reset(self, operator: str) -> int:
        """Forget every alarm (the demo reset). Returns how many there were."""
        with self._lock:
            count = len(self._open) + len(self._cleared)
            self._open.clear()
            self._cleared.clear()
        self.publish(AlertsReset(operator, iso(self.clock())))
        return count

    def adopt(self, alarm: dict) -> None:
        """Take an alarm as another instance of a cluster left it after a transition.

        That instance recorded and broadcast the transition; here it is only
        made the local state (by its subject and condition), then published as AlertAdopted.
        """
        key = (alarm["subject"], alarm["condition"])
        held = dict(alarm)
        held.pop("alarm_state", None)
        held.setdefault("events", [])
        if held.get("shelved") and held.get("shelved_until"):
            from datetime import datetime
            held["_shelved_until_ts"] = datetime.fromisoformat(
                held["shelved_until"].replace("Z", "+00:00")).timestamp()
        with self._lock:
            self._open.pop(key, None)
            if held["active"] or not held["acknowledged"]:
                self._open[key] = held
            else:
                self._cleared = [a for a in self._cleared if a["id"] != held["id"]]
                self._cleared.append(held)
                del self._cleared[:-CLEARED_KEPT]
            snapshot = self._public(held)
        self.publish(AlertAdopted(snapshot))

    # -- reads -------------------------------------------------------------------
    def get(self, alert_id: str) -> dict:
        self.expire_shelves()
        with self._lock:
            return self._public(self._find(alert_id)[1], events=True)

    def listing(self, include_cleared: bool, state: str | None = None) -> list[dict]:
        """Alarms not yet cleared-and-acknowledged (plus the archive when asked),
        most severe first; `state` filters on an `alarm_state` or `shelved`."""
        self.expire_shelves()
        with self._lock:
            alerts = [self._public(a) for a in self._open.values()]
            if include_cleared:
                alerts += [self._public(a) for a in reversed(self._cleared)]
        if state == "shelved":
            alerts = [a for a in alerts if a["shelved"]]
        elif state is not None:
            alerts = [a for a in alerts if a["alarm_state"] == state]
        alerts.sort(key=lambda a: (not a["active"], -SEVERITY_RANK[a["severity"]]))
        return alerts

    def summary(self) -> dict:
        """Counts per ISA-18.2 state, shelved apart, and active ones per severity."""
        self.expire_shelves()
        with self._lock:
            alarms = list(self._open.values())
            archived = len(self._cleared)
        states = {name: 0 for name in ALARM_STATES}
        severities = {name: 0 for name in SEVERITIES}
        shelved = 0
        for alarm in alarms:
            if alarm["shelved"]:
                shelved += 1
                continue
            states[alarm_state(alarm)] += 1
            if alarm["active"]:
                severities[alarm["severity"]] += 1
        states["cleared_acknowledged"] = archived
        return {"states": states, "shelved": shelved, "active_by_severity": severities,
                "unacknowledged": states["active_unacknowledged"] + states["cleared_unacknowledged"]}

    def restore(self, events: list[dict]) -> int:
        """Reopen alarms whose latest recorded state (events newest first) is open.

        Returns how many were reopened. Used at start-up, so a restart does
        not forget an alarm an operator has not yet seen cleared.
        """
        latest: dict[str, dict] = {}
        for event in events:
            if event.get("id") and event.get("subject") and event["id"] not in latest:
                latest[event["id"]] = event
        reopened = 0
        with self._lock:
            for event in latest.values():
                state = event.get("alarm_state") or {
                    "active": "active_unacknowledged", "acknowledged": "active_acknowledged",
                }.get(event.get("state"), "cleared_acknowledged")
                if state == "cleared_acknowledged":
                    continue
                key = (event["subject"], event["condition"])
                if key in self._open:
                    continue
                severity = event.get("severity", "warning")
                self._open[key] = {
                    "id": event["id"], "condition": event["condition"], "subject": event["subject"],
                    "severity": severity if severity in SEVERITY_RANK else "warning",
                    "active": state.startswith("active"),
                    "acknowledged": state.endswith("_acknowledged"),
                    "raised_at": event.get("raised_at") or event.get("time"),
                    "acknowledged_by": event.get("acknowledged_by") or None, "acknowledged_at": None,
                    "cleared_at": None, "shelved": False, "shelved_until": None, "shelved_by": None,
                    "shelve_reason": None, "count": 1, "events": [], "message": event.get("message", ""),
                    "sensor_id": event.get("sensor_id") or None, "node_id": event.get("node_id") or None,
                    "metric": event.get("metric") or None, "value": event.get("value"),
                    "threshold": event.get("threshold"), "restored": True}
                reopened += 1
        return reopened

    # -- internals ---------------------------------------------------------------
    def _find(self, alert_id: str, archived_ok: bool = True) -> tuple[tuple[str, str] | None, dict]:
        for key, alarm in self._open.items():
            if alarm["id"] == alert_id:
                return key, alarm
        if archived_ok:
            for alarm in self._cleared:
                if alarm["id"] == alert_id:
                    return None, alarm
            raise NotFound(f"no alert '{alert_id}'")
        raise NotFound(f"no open alert '{alert_id}' (cleared and acknowledged alerts cannot be shelved)")

    def _archive(self, key: tuple[str, str]) -> None:
        alarm = self._open.pop(key)
        if alarm["shelved"]:
            self._unshelve(alarm, SYSTEM, "unshelved")
        self._cleared.append(alarm)
        del self._cleared[:-CLEARED_KEPT]

    def _unshelve(self, alarm: dict, who: str, action: str) -> None:
        alarm.update(shelved=False, shelved_until=None, shelved_by=None, shelve_reason=None)
        alarm.pop("_shelved_until_ts", None)
        self._log(alarm, action, who)

    def _log(self, alarm: dict, action: str, who: str, detail: str | None = None) -> None:
        alarm["last_action"] = action
        alarm["last_action_by"] = who
        alarm["events"].append({"action": action, "by": who, "at": iso(self.clock()),
                                **({"detail": detail} if detail else {})})
        del alarm["events"][:-EVENTS_KEPT]

    @staticmethod
    def _public(alarm: dict, events: bool = False) -> dict:
        view = {k: v for k, v in alarm.items() if not k.startswith("_") and k != "events"}
        view["state"] = legacy_state(alarm)
        view["alarm_state"] = alarm_state(alarm)
        if events:
            view["events"] = list(alarm["events"])
        return view

    def _transition(self, alert: dict) -> None:
        action = alert.get("last_action")
        if action in ("raised", "reactivated", "escalated"):
            self.publish(AlertRaised(alert))
        elif action == "cleared":
            self.publish(AlertCleared(alert))
        else:   # acknowledged, shelved, unshelved, shelf_expired
            self.publish(AlertUpdated(alert))
