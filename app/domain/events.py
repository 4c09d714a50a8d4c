"""Domain events: facts that happened, each a small frozen dataclass.

A service raises an event through the bus (`app/bus.py`) and goes on; every
consequence of an event (storing it, broadcasting it on `/live`, sending it to
a device, re-planning) is a handler listed in `app/handlers.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain.records import Alarm, Command, Decision, Reading, Routing

if TYPE_CHECKING:
    from app.services.routing import RoutingPlan


class Event:
    """Base of every domain event (a marker, so the bus can check what it is given)."""


@dataclass(frozen=True)
class ReadingsAccepted(Event):
    """A batch passed validation and is stored. `source`: http, mqtt, simulator ...

    `records` are all of them (history keeps every reading); `live` those that
    became a sensor's live value (source fusion may prefer another source's).
    """
    records: list[Reading]
    live: list[Reading]
    source: str


@dataclass(frozen=True)
class ReadingsReplicated(Event):
    """A batch another instance of the cluster accepted, now in this live store."""
    records: list[Reading]
    origin: str


@dataclass(frozen=True)
class SourceRefreshed(Event):
    """An operator had an external source fetched now; `status` is its state after."""
    source_id: str
    operator: str
    source_ip: str | None
    status: dict


@dataclass(frozen=True)
class AlertRaised(Event):
    """An alarm was raised, re-activated before its clearing was acknowledged, or escalated."""
    alert: Alarm


@dataclass(frozen=True)
class AlertCleared(Event):
    """An alarm's condition has gone (it may still wait for an acknowledgement)."""
    alert: Alarm


@dataclass(frozen=True)
class AlertUpdated(Event):
    """An operator acknowledged, shelved or unshelved an alarm, or its shelf ran out."""
    alert: Alarm


@dataclass(frozen=True)
class AlertAdopted(Event):
    """An alarm transition made on another instance of the cluster (recorded and broadcast there)."""
    alert: Alarm


@dataclass(frozen=True)
class AlertsReset(Event):
    """The demo reset forgot every alarm."""
    by: str
    timestamp: str


@dataclass(frozen=True)
class PlanChanged(Event):
    """The engine finished a planning run; `view` is the plan's summary (already the
    store's `routing`), `plan` the RoutingPlan behind it (None without one)."""
    view: Routing
    plan: RoutingPlan | None = None


@dataclass(frozen=True)
class DecisionMade(Event):
    """A decision was published or changed state (recommended, applied, dismissed ...).

    The DecisionBook keeps and records it; handlers only tell the others.
    `decision` is the book's own record (it may move on): handlers read it, never change it.
    """
    decision: Decision


@dataclass(frozen=True)
class ControlApplied(Event):
    """A control took effect in the control state. `origin`: operator or engine."""
    control: dict
    source_ip: str | None = None


@dataclass(frozen=True)
class ControlAdopted(Event):
    """A control applied on another instance of the cluster (sent, audited, broadcast there)."""
    control: dict


@dataclass(frozen=True)
class CommandStateChanged(Event):
    """A device command moved on: queued, sent, delivered, successful, failed, expired ...
    `command` is a copy of it as it was then."""
    command: Command


@dataclass(frozen=True)
class DeviceChanged(Event):
    """A registered device's view changed (provisioned, seen, online/offline, edited)."""
    device: dict


@dataclass(frozen=True)
class DeviceReturned(Event):
    """A registered device was heard from (telemetry, a poll, an answer) after being
    offline or never seen: its open commands go out again."""
    device_id: str


@dataclass(frozen=True)
class DevicePresence(Event):
    """A device reported online/offline; `news` is False for a retained old state."""
    device_id: str
    state: str
    news: bool


@dataclass(frozen=True)
class HealthChanged(Event):
    health: dict


@dataclass(frozen=True)
class ForecastUpdated(Event):
    view: dict
