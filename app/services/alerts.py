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

Each alarm is an `Alarm` record (app/domain/records.py); the book hands out
copies, and app/wire.py's `alert` makes the wire shape. Producers use `raise_`,
`clear`, `is_open` and `open_alerts`; the legacy `state` field
(active/acknowledged/cleared) stays beside `alarm_state`.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from app.domain.clock import Clock, iso
from app.domain.events import (AlertAdopted, AlertCleared, AlertRaised, AlertsReset, AlertUpdated,
                               Event)
from app.domain.records import Alarm, AlarmLogEntry
from app.errors import InvalidInput, NotFound
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


class AlertBook:
    def __init__(self, publish: Callable[[Event], None], clock: Clock,
                 schedule: Callable[[float, Callable[[], None]], None] | None = None):
        self.publish = publish
        self.clock = clock
        # schedule(delay_s, fn): runs fn later (a background task); shelf expiry.
        self.schedule = schedule
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], Alarm] = {}     # not yet cleared-and-acknowledged
        self._cleared: list[Alarm] = []                   # archived
        self._ids = itertools.count(1)
        self._prefix = id_prefix(clock)

    # -- producers ---------------------------------------------------------------
    def raise_(self, subject: str, condition: str, severity: str, message: str, *,
               sensor_id: str | None = None, node_id: str | None = None, metric: str | None = None,
               value: float | None = None, threshold: float | None = None,
               evidence: dict[str, Any] | None = None, device_id: str | None = None) -> Alarm:
        """Raise or update the alarm on (subject, condition); returns it.

        A repeat takes the producer's newest measurement, evidence and message."""
        if severity not in SEVERITY_RANK:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        key = (subject, condition)
        now = iso(self.clock())
        action = None
        with self._lock:
            alarm = self._open.get(key)
            if alarm is None:
                alarm = self._open[key] = Alarm(id=f"{self._prefix}-{next(self._ids)}", subject=subject,
                                                condition=condition, severity=severity, raised_at=now)
                action = "raised"
            elif not alarm.active:
                # Back before anyone acknowledged the clearing: active again, and still unseen
                # (a cleared alarm is open only while unacknowledged; acknowledging archives it).
                alarm.active, alarm.cleared_at, alarm.severity = True, None, severity
                action = "reactivated"
            elif SEVERITY_RANK[severity] > SEVERITY_RANK[alarm.severity]:
                alarm.severity = severity
                alarm.escalated_at = now
                action = "escalated"
            alarm.sensor_id, alarm.node_id, alarm.metric = sensor_id, node_id, metric
            alarm.value, alarm.threshold = value, threshold
            alarm.evidence, alarm.device_id = evidence, device_id
            alarm.message = message
            alarm.count += 1
            alarm.updated_at = now
            if action:
                self._log(alarm, action, SYSTEM)
            snapshot = self._copy(alarm)
        if action:
            self._transition(snapshot)
        return snapshot

    def clear(self, subject: str, condition: str) -> Alarm | None:
        """The condition has gone. An acknowledged alarm is archived; an
        unacknowledged one waits, cleared, for its acknowledgement."""
        with self._lock:
            alarm = self._open.get((subject, condition))
            if alarm is None or not alarm.active:
                return None
            alarm.active = False
            alarm.cleared_at = iso(self.clock())
            if alarm.acknowledged:
                self._archive((subject, condition))
            self._log(alarm, "cleared", SYSTEM)     # after the unshelving archiving implies
            snapshot = self._copy(alarm)
        self._transition(snapshot)
        return snapshot

    def is_open(self, subject: str, condition: str, severity: str | None = None) -> bool:
        """Whether the condition is present (active), whatever its acknowledgement."""
        alarm = self._open.get((subject, condition))
        return alarm is not None and alarm.active and (severity is None or alarm.severity == severity)

    def open_alerts(self) -> list[Alarm]:
        """Alarms whose condition is present, shelved ones included (planning still sees them)."""
        with self._lock:
            return [self._copy(a) for a in self._open.values() if a.active]

    # -- operators ---------------------------------------------------------------
    def acknowledge(self, alert_id: str, operator: str) -> Alarm:
        with self._lock:
            key, alarm = self._find(alert_id)
            if alarm.acknowledged:
                return self._copy(alarm)            # idempotent: the first operator stays
            alarm.acknowledged, alarm.acknowledged_by = True, operator
            alarm.acknowledged_at = iso(self.clock())
            if not alarm.active:
                self._archive(key)
            self._log(alarm, "acknowledged", operator)
            snapshot = self._copy(alarm)
        self._transition(snapshot)
        return snapshot

    def acknowledge_many(self, alert_ids: list[str], operator: str) -> list[Alarm]:
        """Acknowledge all of `alert_ids` ("acknowledge all visible"); unknown ids are skipped."""
        done = []
        for alert_id in alert_ids:
            try:
                done.append(self.acknowledge(alert_id, operator))
            except NotFound:
                continue
        return done

    def shelve(self, alert_id: str, operator: str, duration_s: float, reason: str | None = None) -> Alarm:
        if not SHELVE_MIN_S <= duration_s <= SHELVE_MAX_S:
            raise InvalidInput("invalid shelve", [{"field": "duration_s", "message":
                               f"seconds from {SHELVE_MIN_S:g} to {SHELVE_MAX_S:g} (24 h), e.g. 3600"}])
        until = self.clock() + duration_s
        with self._lock:
            alarm = self._find_open(alert_id)
            alarm.shelved_until, alarm.shelved_by, alarm.shelve_reason = until, operator, reason
            self._log(alarm, "shelved", operator, f"for {duration_s:g} s" + (f": {reason}" if reason else ""))
            snapshot = self._copy(alarm)
        self._transition(snapshot)
        if self.schedule is not None:
            self.schedule(duration_s, self.expire_shelves)
        return snapshot

    def unshelve(self, alert_id: str, operator: str) -> Alarm:
        with self._lock:
            alarm = self._find_open(alert_id)
            if not alarm.shelved:
                return self._copy(alarm)
            self._unshelve(alarm, operator, "unshelved")
            snapshot = self._copy(alarm)
        self._transition(snapshot)
        return snapshot

    def expire_shelves(self) -> list[Alarm]:
        """Return every alarm whose shelf time is up; audited as done by the system."""
        now = self.clock()
        returned = []
        with self._lock:
            for alarm in self._open.values():
                if alarm.shelved_until is not None and alarm.shelved_until <= now:
                    self._unshelve(alarm, SYSTEM, "shelf_expired")
                    returned.append(self._copy(alarm))
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

    def adopt(self, data: dict) -> None:
        """Take an alarm as another instance of a cluster left it after a transition.

        `data` is its wire shape (app/handlers.py shares `wire.alert`). That
        instance recorded and broadcast the transition; here it is only made the
        local state (by its subject and condition), then published as AlertAdopted.
        """
        held = adopted(data)
        key = (held.subject, held.condition)
        with self._lock:
            self._open.pop(key, None)
            if held.active or not held.acknowledged:
                self._open[key] = held
            else:
                self._cleared = [a for a in self._cleared if a.id != held.id]
                self._cleared.append(held)
                del self._cleared[:-CLEARED_KEPT]
            snapshot = self._copy(held)
        self.publish(AlertAdopted(snapshot))

    # -- reads -------------------------------------------------------------------
    def get(self, alert_id: str) -> Alarm:
        """One alarm, with its audit trail (`events`)."""
        self.expire_shelves()
        with self._lock:
            return self._copy(self._find(alert_id)[1])

    def listing(self, include_cleared: bool, state: str | None = None) -> list[Alarm]:
        """Alarms not yet cleared-and-acknowledged (plus the archive when asked),
        most severe first; `state` filters on an `alarm_state` or `shelved`."""
        self.expire_shelves()
        with self._lock:
            alerts = [self._copy(a) for a in self._open.values()]
            if include_cleared:
                alerts += [self._copy(a) for a in reversed(self._cleared)]
        if state == "shelved":
            alerts = [a for a in alerts if a.shelved]
        elif state is not None:
            alerts = [a for a in alerts if a.alarm_state == state]
        alerts.sort(key=lambda a: (not a.active, -SEVERITY_RANK[a.severity]))
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
            if alarm.shelved:
                shelved += 1
                continue
            states[alarm.alarm_state] += 1
            if alarm.active:
                severities[alarm.severity] += 1
        states["cleared_acknowledged"] = archived
        return {"states": states, "shelved": shelved, "active_by_severity": severities,
                "unacknowledged": states["active_unacknowledged"] + states["cleared_unacknowledged"]}

    def restore(self, events: list[dict]) -> int:
        """Reopen alarms whose latest recorded state (history's `alert` rows, newest first) is open.

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
                # Rows from before `alarm_state` carry only the legacy state; one with
                # neither (or `cleared`) is taken as done: cleared and acknowledged.
                state = event.get("alarm_state") or {
                    "active": "active_unacknowledged", "acknowledged": "active_acknowledged",
                }.get(event.get("state"), "cleared_acknowledged")
                if state == "cleared_acknowledged":
                    continue
                key = (event["subject"], event["condition"])
                if key in self._open:
                    continue
                self._open[key] = Alarm(
                    id=event["id"], subject=event["subject"], condition=event["condition"],
                    severity=event["severity"] if event.get("severity") in SEVERITY_RANK else "warning",
                    message=event.get("message", ""), active=state.startswith("active"),
                    acknowledged=state.endswith("_acknowledged"),
                    raised_at=event.get("raised_at") or event.get("time"),
                    acknowledged_by=event.get("acknowledged_by") or None, count=1, restored=True,
                    # History writes "" for a missing text; numbers are null there already.
                    sensor_id=event.get("sensor_id") or None, node_id=event.get("node_id") or None,
                    metric=event.get("metric") or None, value=event.get("value"),
                    threshold=event.get("threshold"))
                reopened += 1
        return reopened

    # -- internals ---------------------------------------------------------------
    def _find(self, alert_id: str) -> tuple[tuple[str, str] | None, Alarm]:
        """The alarm and its key among the open ones (None when archived)."""
        for key, alarm in self._open.items():
            if alarm.id == alert_id:
                return key, alarm
        for alarm in self._cleared:
            if alarm.id == alert_id:
                return None, alarm
        raise NotFound(f"no alert '{alert_id}'")

    def _find_open(self, alert_id: str) -> Alarm:
        """An alarm not yet archived (only those may be shelved)."""
        for alarm in self._open.values():
            if alarm.id == alert_id:
                return alarm
        raise NotFound(f"no open alert '{alert_id}' (cleared and acknowledged alerts cannot be shelved)")

    def _archive(self, key: tuple[str, str]) -> None:
        alarm = self._open.pop(key)
        if alarm.shelved:
            self._unshelve(alarm, SYSTEM, "unshelved")
        self._cleared.append(alarm)
        del self._cleared[:-CLEARED_KEPT]

    def _unshelve(self, alarm: Alarm, who: str, action: str) -> None:
        alarm.shelved_until = alarm.shelved_by = alarm.shelve_reason = None
        self._log(alarm, action, who)

    def _log(self, alarm: Alarm, action: str, who: str, detail: str | None = None) -> None:
        alarm.last_action, alarm.last_action_by = action, who
        alarm.events.append(AlarmLogEntry(action, who, iso(self.clock()), detail))
        del alarm.events[:-EVENTS_KEPT]

    @staticmethod
    def _copy(alarm: Alarm) -> Alarm:
        """A snapshot to hand out: later changes to the book's own record do not reach it."""
        return replace(alarm, events=list(alarm.events))

    def _transition(self, alarm: Alarm) -> None:
        action = alarm.last_action
        if action in ("raised", "reactivated", "escalated"):
            self.publish(AlertRaised(alarm))
        elif action == "cleared":
            self.publish(AlertCleared(alarm))
        else:   # acknowledged, shelved, unshelved, shelf_expired
            self.publish(AlertUpdated(alarm))


def adopted(data: dict) -> Alarm:
    """An alarm from its wire shape, as another instance shared it (no audit trail travels)."""
    shelved_until = data.get("shelved_until") if data.get("shelved") else None
    return Alarm(
        id=data["id"], subject=data["subject"], condition=data["condition"], severity=data["severity"],
        message=data.get("message", ""), active=data["active"], acknowledged=data["acknowledged"],
        raised_at=data.get("raised_at"), acknowledged_by=data.get("acknowledged_by"),
        acknowledged_at=data.get("acknowledged_at"), cleared_at=data.get("cleared_at"),
        shelved_until=epoch(shelved_until) if shelved_until else None,
        shelved_by=data.get("shelved_by"), shelve_reason=data.get("shelve_reason"),
        count=data.get("count", 0), updated_at=data.get("updated_at"),
        escalated_at=data.get("escalated_at"), last_action=data.get("last_action"),
        last_action_by=data.get("last_action_by"), restored=bool(data.get("restored")),
        sensor_id=data.get("sensor_id"), node_id=data.get("node_id"), metric=data.get("metric"),
        value=data.get("value"), threshold=data.get("threshold"), evidence=data.get("evidence"),
        device_id=data.get("device_id"))


def epoch(text: str) -> float:
    """Epoch seconds of an ISO 8601 time (`Z` or an offset)."""
    return datetime.fromisoformat(text).timestamp()
