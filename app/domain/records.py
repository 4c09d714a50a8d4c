"""The core's records: typed, slotted dataclasses the services pass around.

Each record is what the core knows of a thing, not how a client sees it: the
wire shape is made from it by one serializer per resource (app/wire.py), and
an adapter that stores or ships a record (InfluxDB lines, the cluster's log)
turns it into its own format at the edge. Validated input (app/models.py)
builds records; nothing in the core reads a reading as a dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# -- readings ------------------------------------------------------------------------

# The provenance of our own devices' readings (app/services/fusion.py names the others).
SENSOR_SOURCE = "sensor"
# Data quality's flags (app/services/data_quality.py); a reading it has not
# seen (one rebuilt from history) counts as good.
GOOD, SUSPECT, BAD = "good", "suspect", "bad"


@dataclass(slots=True)
class Reading:
    """One accepted measurement, as the live store, analysis and history see it.

    Built by the ingest pipeline from a validated `app.models.Reading` (or read
    back from the cluster's log or history). Not frozen: data quality sets
    `quality` before the batch is stored; once stored, the same object is the
    live value, the history line's source and the broadcast, so nothing
    changes it afterwards. The ingest path builds it with positional
    arguments (a keyword call costs 0.5 us more a reading); elsewhere name them.
    """

    sensor_id: str
    value: float
    # The registry's metric when the device did not say (`value` when nobody knows).
    metric: str
    # When it was measured, twice: `ts` in epoch seconds for comparing and
    # storing, `timestamp` the same instant as ISO 8601 UTC text for clients.
    timestamp: str
    ts: float
    unit: str | None = None
    node_id: str | None = None
    zone: str | None = None
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


# -- decisions -----------------------------------------------------------------------
# The engine's decisions (app/services/narration.py finds the actions, app/services/engine.py
# makes the decision, app/services/decisions.py keeps it through its life).

@dataclass(slots=True)
class ControlOrder:
    """The control an action sends when its decision is applied: what
    ControlService.issue() is called with (`set_valve` to a percentage, `set_pump` on/off)."""
    action: str
    target: str
    value: float | str


@dataclass(slots=True)
class Action:
    """One material change of the plan, in words, with the control it needs, if any.

    `causes` are the real limits behind it, each a sentence that starts with its
    kind (`capacity: ...`, `operator restriction: ...`). None for the single
    action a decision has when it was made without a list (a leak, a failed solve):
    that action names no causes, so its wire shape has no `causes` key.
    """
    kind: str
    target: str
    text: str
    command: ControlOrder | None = None
    causes: list[str] | None = field(default_factory=list)


@dataclass(slots=True)
class Decision:
    """One decision of the engine, from `recommended` to `applied`, `dismissed` or `superseded`.

    Only the DecisionBook changes it (`state` and what goes with it); the store's
    feed and the DecisionMade events hold the same object, so the feed shows its
    current state. Times are ISO 8601 UTC strings, as they are answered.
    """
    id: str
    timestamp: str                  # when it was made
    kind: str                       # the leading action's kind, or leak_suspected, plan_infeasible ...
    action: str                     # its one-line summary
    target: str
    reason: str
    confidence: float
    confidence_reason: str
    topic: str                      # "plan" or "leak:<zone>": a newer decision on it supersedes this one
    actions: list[Action]
    state: str = "recommended"
    state_at: str = ""
    state_by: str | None = None     # who applied or dismissed it ("engine" in auto mode)
    evidence: dict[str, Any] | None = None   # a leak decision's: LeakFinding.evidence()
    commands: list[str] | None = None        # once applied: the ids of the controls it sent


# -- commands ------------------------------------------------------------------------
# Controls on their way to the devices (app/services/commands.py), and the commands of
# those on a target a registered device drives (app/services/device_commands.py).

@dataclass(slots=True, frozen=True)
class ControlMessage:
    """An applied control as it goes out to the devices: retained on the control topic
    of its target (the desired state a device reads when it connects), or the
    command of the registered device that drives the target."""
    id: str                         # the control's id
    action: str                     # set_valve, set_pump, isolate, restore ...
    target: str | None
    value: Any
    timestamp: str                  # ISO 8601 UTC: when it was applied


@dataclass(slots=True)
class CommandParams:
    """What the device is asked to do with `method`: the control's target and value."""
    target: str | None
    value: Any


@dataclass(slots=True)
class CommandStep:
    """One state a command went through and when it got there (ISO 8601 UTC)."""
    state: str
    at: str


@dataclass(slots=True)
class Command:
    """A device's command and its delivery state (queued, sent, delivered, successful ...).

    Each `..._at` time, which clients see, has an epoch twin `..._ts` (or
    `deadline_ts`) that the CommandBook's clock compares against for expiry and
    timeout; those, and `http_fetched`, stay inside.
    """
    id: str
    device_id: str
    control_id: str | None
    method: str | None              # the control's action: set_valve, set_pump ...
    params: CommandParams
    state: str
    timeout_s: float
    created_at: str
    created_ts: float
    expires_at: str
    expires_ts: float
    updated_at: str
    attempts: int = 0               # times it was handed to a transport
    result: Any = None              # what the device answered with its outcome
    history: list[CommandStep] = field(default_factory=list)
    deadline_ts: float | None = None     # sent or delivered: no outcome past this is a timeout
    http_fetched: bool = False      # taken by the device's HTTP poll since this process started
    last_sent_at: str | None = None


# -- alarms --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AlarmLogEntry:
    """One step of an alarm's audit trail: what was done, by whom (an operator or `system`), when."""
    action: str               # raised, reactivated, escalated, cleared, acknowledged, shelved, ...
    by: str
    at: str                   # ISO 8601 UTC
    detail: str | None = None  # e.g. a shelf's duration and reason


@dataclass(slots=True)
class Alarm:
    """One alarm (ISA-18.2) on a (subject, condition), as app/services/alerts.py keeps it.

    The alert book changes its own copy under its lock and hands out copies
    (snapshots), which events carry. Times are ISO 8601 UTC strings stamped
    when each step happened, except the shelf's end: epoch seconds, which the
    book compares with its clock (the wire writes it in ISO).
    """
    id: str
    subject: str              # what it is about: a sensor, a zone, a device, `history`
    condition: str            # quality_ph, range_flow, leak_suspected, sensor_offline, ...
    severity: str             # critical, major, minor or warning
    message: str = ""
    active: bool = True       # the condition is present
    acknowledged: bool = False
    raised_at: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    cleared_at: str | None = None
    shelved_until: float | None = None   # epoch seconds; None when not shelved
    shelved_by: str | None = None
    shelve_reason: str | None = None
    count: int = 0            # how many times a producer raised it
    updated_at: str | None = None       # the last raise (None on an alarm restored from history)
    escalated_at: str | None = None
    last_action: str | None = None      # the newest audit entry's action and who did it
    last_action_by: str | None = None
    restored: bool = False    # reopened at start-up from the history store
    # What the producer measured: every producer names these, None where they do not apply.
    sensor_id: str | None = None
    node_id: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    # Producer-specific details: the leak watch's evidence (LeakFinding.evidence()) and
    # the device of a `device_offline` alarm.
    evidence: dict[str, Any] | None = None
    device_id: str | None = None
    events: list[AlarmLogEntry] = field(default_factory=list)   # the audit trail, oldest first

    @property
    def shelved(self) -> bool:
        return self.shelved_until is not None

    @property
    def state(self) -> str:
        """The contract's original three states (active/acknowledged/cleared), kept for existing clients."""
        if not self.active:
            return "cleared"
        return "acknowledged" if self.acknowledged else "active"

    @property
    def alarm_state(self) -> str:
        """The ISA-18.2 state: active_unacknowledged, active_acknowledged, cleared_..."""
        return (f"{'active' if self.active else 'cleared'}_"
                f"{'acknowledged' if self.acknowledged else 'unacknowledged'}")


# -- plans ---------------------------------------------------------------------------
# The first step of the stored plan, as the engine sums it up after each planning run
# (app/services/engine.py): /api/routing, `routing_update` and PlanChanged carry it.

@dataclass(slots=True)
class PlannedFlow:
    """A link's flow in the plan (MLD), with its ends and capacity for the map."""
    link_id: str
    from_: str
    to: str
    flow: float
    capacity: float


@dataclass(slots=True)
class PlannedZone:
    """A zone's demand, what the plan supplies and the shortfall (MLD).

    `metered` only while a leak is suspected there: the metered demand, of which
    the plan serves only `demand` (what the city-wide demand implies).
    """
    node_id: str
    demand: float
    supplied: float
    shortfall: float
    metered: float | None = None


@dataclass(slots=True)
class PlannedSource:
    """A source's planned output (MLD); `excluded` is why it may not be used, if it may not."""
    node_id: str
    output: float
    capacity: float | None
    excluded: str | None = None


@dataclass(slots=True)
class PlannedReservoir:
    """A reservoir's volume at the end of the first step (ML)."""
    node_id: str
    volume_end: float
    max_volume: float | None


@dataclass(slots=True)
class Routing:
    """The routing plan in force, summed up: its first step and how it was made.

    Before the first good plan, `has_plan` is False and only the status is known:
    no mode, confidence or reservoirs (its answer has no such keys).
    """
    generated_at: str | None        # ISO 8601 UTC: when the planning run ended
    status: str                     # pending, optimal, infeasible or degraded (kept the last good plan)
    message: str
    objective: float | None
    solve_ms: float | None
    flows: list[PlannedFlow] = field(default_factory=list)
    zones: list[PlannedZone] = field(default_factory=list)
    sources: list[PlannedSource] = field(default_factory=list)
    has_plan: bool = False
    mode: str | None = None         # auto or manual when it was made: auto applies decisions at once
    confidence: float | None = None
    confidence_reason: str | None = None
    reservoirs: list[PlannedReservoir] = field(default_factory=list)
