"""The wire shape of every resource: one serializer per resource, the only way out.

The API convention (README "API conventions"):
- keys are snake_case;
- times are ISO 8601 UTC strings ending in `Z`; durations are numbers whose
  key names the unit (`_s`, `_ms`, `_h`); numeric epoch milliseconds appear only
  where a device sends them (telemetry's `ts`, which is input, never an answer).

The services keep what they need inside their records (a reading's epoch `ts`,
an alarm's epoch shelf end, a command's deadlines); route handlers and the
Socket.IO publishers hand out only what these functions return, so nothing
internal reaches a client. The two answers outside the convention are listed
once, in LEGACY_CAMEL_CASE; the convention test (tests/inprocess/test_wire.py)
reads them from here.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, TypedDict

from app.domain.clock import iso
from app.domain.records import (Action, Alarm, Command, ControlMessage, ControlOrder, Decision, LiveReading,
                                PlannedFlow, PlannedReservoir, PlannedSource, PlannedZone, Reading, Routing)

# The only exceptions to snake_case: the original prototype's answers, whose clients
# read these camelCase fields (../shared/CONTRACT.md). Route (method, rule) -> the fields.
LEGACY_CAMEL_CASE: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/ingest"): frozenset({"sensorId"}),
    ("GET", "/api/latest/<sensor_id>"): frozenset({"sensorId", "latencyMs"}),
}

# Fields whose value is a map keyed by data (ids, device keys, reason texts), not by
# field names: its keys are whatever the data is called, not snake_case names.
DATA_KEYED_FIELDS = frozenset({
    "zone_factors",      # /api/simulation: zone id -> factor
    "telemetry",         # a device: its own telemetry key -> where it goes
    "unmapped",          # a device: its own key -> last value
    "attributes",        # a device: attribute names it sends
    "devices",           # MQTT status: device id -> presence
    "dropped_reasons",   # a source: reason text -> count
    "rejected",          # history status: InfluxDB's reason -> count
    "by_source",         # reading counts per provenance (api:weather, ...)
})


def iso_time(value: Any) -> str | None:
    """A time as ISO 8601 UTC with `Z`: epoch seconds, a datetime or an ISO string in any offset."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("a bool is not a time")
    if isinstance(value, (int, float)):
        return iso(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        text = str(value)
        if text.endswith("Z"):
            return text
        moment = datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _times(record: dict, keys: Iterable[str]) -> dict:
    for key in keys:
        if key in record:
            record[key] = iso_time(record[key])
    return record


# -- readings ----------------------------------------------------------------------

class WireReading(TypedDict, total=False):
    """A reading as clients see it (the contract's reading plus what the server adds)."""
    sensor_id: str
    value: float
    metric: str
    unit: str | None
    node_id: str | None
    zone: str | None
    timestamp: str
    latency_ms: float | None
    source: str               # provenance: sensor, or an external source's name
    quality: str              # good, suspect or bad (app/services/data_quality.py)
    quality_reason: str
    received_at: str          # listings: when the server last heard from it
    stale: bool


READING_FIELDS = frozenset(WireReading.__annotations__)


def reading(record: Reading) -> WireReading:
    """A reading without the store's internals (its epoch `ts`); `quality_reason` only when flagged."""
    out: WireReading = {
        "sensor_id": record.sensor_id, "value": record.value, "metric": record.metric,
        "unit": record.unit, "node_id": record.node_id, "zone": record.zone,
        "timestamp": record.timestamp, "latency_ms": record.latency_ms, "source": record.source,
        "quality": record.quality}
    if record.quality_reason is not None:
        out["quality_reason"] = record.quality_reason
    return out


def readings(records: Iterable[Reading]) -> list[WireReading]:
    """Every `sensor_update` frame goes through here: about 0.5 us a reading (bench/accept_path.py)."""
    return [reading(r) for r in records]


def live_reading(entry: LiveReading) -> WireReading:
    """A reading in a listing: when the server last heard from the sensor, and whether it is stale."""
    out = reading(entry.reading)
    out["received_at"] = iso_time(entry.received_at)
    out["stale"] = entry.stale
    return out


def live_readings(entries: Iterable[LiveReading]) -> list[WireReading]:
    """GET /api/sensors and the snapshot's `sensors`."""
    return [live_reading(e) for e in entries]


def sensor_detail(record: Reading, recent: list[dict]) -> dict:
    """GET /api/sensors/<id>: the latest reading and its recent points `{t, v}`."""
    return {**reading(record), "recent": [{"t": iso_time(p["t"]), "v": p["v"]} for p in recent]}


def latest_legacy(sensor_id: str, record: Reading) -> dict:
    """GET /api/latest/<id>: the prototype's camelCase shape (LEGACY_CAMEL_CASE)."""
    return {"sensorId": sensor_id, "zone": record.zone, "value": record.value,
            "latencyMs": record.latency_ms, "timestamp": iso_time(record.timestamp),
            "found": True}


# -- alarms, decisions, controls, plans ------------------------------------------------

# Alarm fields a client sees only once they apply: a restored alarm has no raise or
# action yet, only an escalated one an escalation time, only a leak its evidence, only a
# device_offline alarm its device, only a reopened one `restored`.
ALERT_FIELDS_WHEN_SET = ("updated_at", "escalated_at", "last_action", "last_action_by", "evidence",
                         "device_id")


def alert(alarm: Alarm, events: bool = False) -> dict:
    """An alarm as answered, broadcast and shared in a cluster; `events=True` adds its audit trail."""
    view = {"id": alarm.id, "condition": alarm.condition, "subject": alarm.subject,
            "severity": alarm.severity, "active": alarm.active, "acknowledged": alarm.acknowledged,
            "raised_at": iso_time(alarm.raised_at), "acknowledged_by": alarm.acknowledged_by,
            "acknowledged_at": iso_time(alarm.acknowledged_at), "cleared_at": iso_time(alarm.cleared_at),
            "shelved": alarm.shelved, "shelved_until": iso_time(alarm.shelved_until),
            "shelved_by": alarm.shelved_by, "shelve_reason": alarm.shelve_reason, "count": alarm.count,
            "message": alarm.message, "sensor_id": alarm.sensor_id, "node_id": alarm.node_id,
            "metric": alarm.metric, "value": alarm.value, "threshold": alarm.threshold,
            "state": alarm.state, "alarm_state": alarm.alarm_state}
    for name in ALERT_FIELDS_WHEN_SET:
        value = getattr(alarm, name)
        if value is not None:
            view[name] = iso_time(value) if name.endswith("_at") else value
    if alarm.restored:
        view["restored"] = True
    if events:
        view["events"] = [{"action": e.action, "by": e.by, "at": iso_time(e.at),
                           **({"detail": e.detail} if e.detail else {})} for e in alarm.events]
    return view


def alerts(alarms: Iterable[Alarm]) -> list[dict]:
    return [alert(a) for a in alarms]


def decision_action(action: Action) -> dict:
    """One action of a decision; `causes` only where narration gave it some to name."""
    command = action.command
    view = {"kind": action.kind, "target": action.target, "text": action.text,
            "command": None if command is None else
            {"action": command.action, "target": command.target, "value": command.value}}
    if action.causes is not None:
        view["causes"] = list(action.causes)
    return view


def decision(record: Decision) -> dict:
    """A decision as /api/decisions, /live's `decision` and the cluster's shared state carry it:
    `evidence` only on a leak's, `commands` (the controls it sent) once it is applied."""
    view = {"id": record.id, "timestamp": iso_time(record.timestamp), "kind": record.kind,
            "action": record.action, "target": record.target, "reason": record.reason,
            "confidence": record.confidence, "confidence_reason": record.confidence_reason,
            "topic": record.topic, "actions": [decision_action(a) for a in record.actions],
            "state": record.state, "state_at": iso_time(record.state_at), "state_by": record.state_by}
    if record.evidence is not None:
        view["evidence"] = dict(record.evidence)
    if record.commands is not None:
        view["commands"] = list(record.commands)
    return view


def decisions(records: Iterable[Decision]) -> list[dict]:
    return [decision(d) for d in records]


def decision_record(view: dict) -> Decision:
    """A decision back from its wire shape: how the cluster's leader shares its decisions
    with the other instances (app/services/cluster/shared_state.py)."""
    actions = [Action(a["kind"], a["target"], a["text"],
                      ControlOrder(**a["command"]) if a.get("command") else None,
                      list(a["causes"]) if "causes" in a else None)
               for a in view["actions"]]
    return Decision(view["id"], view["timestamp"], view["kind"], view["action"], view["target"],
                    view["reason"], view["confidence"], view["confidence_reason"], view["topic"], actions,
                    view["state"], view["state_at"], view.get("state_by"), view.get("evidence"),
                    view.get("commands"))


def control(record: dict, audit: bool = False) -> dict:
    """A control as answered and broadcast; the operator's source address only in the
    audit trail (`audit=True`: GET /api/controls, operators only)."""
    view = _times({k: v for k, v in record.items() if audit or k != "source_ip"}, ("timestamp",))
    if isinstance(view.get("command"), dict):   # the command_summary() of the command it became
        view["command"] = {k: v for k, v in view["command"].items() if not k.endswith("_ts")}
    return view


def control_audit(records: Iterable[dict]) -> list[dict]:
    """GET /api/controls: the audit trail, with each control's source address."""
    return [control(c, audit=True) for c in records]


def control_preview(preview: dict) -> dict:
    """POST /api/control/preview: a control's consequence from the plan (app/services/what_if.py)."""
    return _times(dict(preview), ("plan_at",))


def routing(record: Routing | None) -> dict | None:
    """GET /api/routing, `routing_update` and the cluster's shared plan: the plan's first step.
    Before the first plan there is no mode, confidence or reservoirs; a zone is `leak_held`
    (with its `metered` demand) only while a leak is suspected there."""
    if record is None:
        return None
    view: dict[str, Any] = {"generated_at": iso_time(record.generated_at), "status": record.status,
                            "message": record.message}
    if record.has_plan:
        view["mode"] = record.mode
    view.update(objective=record.objective, solve_ms=record.solve_ms)
    if record.has_plan:
        view.update(confidence=record.confidence, confidence_reason=record.confidence_reason)
    view["flows"] = [{"link_id": f.link_id, "from": f.from_, "to": f.to, "flow": f.flow, "capacity": f.capacity}
                     for f in record.flows]
    view["zones"] = [{"node_id": z.node_id, "demand": z.demand, "supplied": z.supplied, "shortfall": z.shortfall,
                      **({"leak_held": True, "metered": z.metered} if z.metered is not None else {})}
                     for z in record.zones]
    view["sources"] = [{"node_id": s.node_id, "output": s.output, "capacity": s.capacity, "excluded": s.excluded}
                       for s in record.sources]
    if record.has_plan:
        view["reservoirs"] = [{"node_id": r.node_id, "volume_end": r.volume_end, "max_volume": r.max_volume}
                              for r in record.reservoirs]
    return view


def routing_record(view: dict) -> Routing:
    """The plan's summary back from its wire shape: the leader's, on the other instances."""
    has_plan = "reservoirs" in view
    return Routing(view["generated_at"], view["status"], view["message"], view["objective"], view["solve_ms"],
                   flows=[PlannedFlow(f["link_id"], f["from"], f["to"], f["flow"], f["capacity"])
                          for f in view["flows"]],
                   zones=[PlannedZone(z["node_id"], z["demand"], z["supplied"], z["shortfall"], z.get("metered"))
                          for z in view["zones"]],
                   sources=[PlannedSource(s["node_id"], s["output"], s["capacity"], s.get("excluded"))
                            for s in view["sources"]],
                   has_plan=has_plan, mode=view.get("mode"), confidence=view.get("confidence"),
                   confidence_reason=view.get("confidence_reason"),
                   reservoirs=[PlannedReservoir(r["node_id"], r["volume_end"], r["max_volume"])
                               for r in view.get("reservoirs", [])])


def plan(view: dict) -> dict:
    """GET /api/plan: every step of the horizon."""
    out = _times(dict(view), ("created_at", "generated_at"))
    out["steps"] = [_times(dict(step), ("start",)) for step in view.get("steps", [])]
    return out


def forecast(view: dict | None) -> dict | None:
    """GET /api/forecast and `prediction_update`: slot starts and the forecast's time in ISO."""
    if view is None:
        return None
    out = _times(dict(view), ("generated_at",))
    out["zones"] = [{**zone, "steps": [_times(dict(step), ("t",)) for step in zone.get("steps", [])]}
                    for zone in view.get("zones", [])]
    return out


# -- devices, commands, sources ----------------------------------------------------------

def command(record: Command) -> dict:
    """A device command: its epoch deadlines (`..._ts`) and `http_fetched` stay inside;
    `last_sent_at` only once it has been sent."""
    view = {"id": record.id, "device_id": record.device_id, "control_id": record.control_id,
            "method": record.method, "params": {"target": record.params.target, "value": record.params.value},
            "state": record.state, "timeout_s": record.timeout_s, "created_at": iso_time(record.created_at),
            "expires_at": iso_time(record.expires_at), "updated_at": iso_time(record.updated_at),
            "attempts": record.attempts, "result": record.result,
            "history": [{"state": step.state, "at": iso_time(step.at)} for step in record.history]}
    if record.last_sent_at is not None:
        view["last_sent_at"] = iso_time(record.last_sent_at)
    return view


def command_summary(record: Command) -> dict:
    """The command a control became, as the control names it (its `command`): the
    control's answer and `control_update` carry it, and it goes with the control record."""
    return {"id": record.id, "device_id": record.device_id, "state": record.state}


def control_message(message: ControlMessage) -> dict:
    """A control on its target's retained MQTT topic, `{prefix}/control/<target>`."""
    return {"action": message.action, "target": message.target, "value": message.value,
            "id": message.id, "timestamp": message.timestamp}


def commands(records: Iterable[Command]) -> list[dict]:
    return [command(c) for c in records]


def command_request(record: Command) -> dict:
    """What the device receives: over MQTT (`v1/devices/<id>/rpc/request/<command id>`)
    or from its HTTP poll (GET /api/v1/<token>/rpc)."""
    return {"id": record.id, "method": record.method,
            "params": {"target": record.params.target, "value": record.params.value},
            "timeout_s": record.timeout_s, "expires_at": record.expires_at}


def device(view: dict) -> dict:
    out = _times(dict(view), ("last_seen", "created_at", "token_rotated_at"))
    if isinstance(out.get("unmapped"), dict):
        out["unmapped"] = {key: _times(dict(entry), ("ts",)) for key, entry in out["unmapped"].items()}
    return out


def audit_entry(entry: dict) -> dict:
    return _times({k: v for k, v in entry.items() if not k.endswith("_ts")}, ("at",))


def source(status: dict) -> dict:
    out = _times(dict(status), ("last_attempt", "last_success", "next_fetch", "paused_until"))
    if isinstance(out.get("last_error"), dict):
        out["last_error"] = _times(dict(out["last_error"]), ("at",))
    return out


# -- operations --------------------------------------------------------------------------

def log_record(entry: dict) -> dict:
    return _times(dict(entry), ("time",))


def simulation_event(event: dict) -> dict:
    return _times(dict(event), ("start", "end"))


def simulation(state: dict) -> dict:
    out = dict(state)
    out["events"] = [simulation_event(e) for e in state.get("events", [])]
    return out


def health(view: dict) -> dict:
    out = dict(view)
    history = out.get("history")
    if isinstance(history, dict) and isinstance(history.get("last_error"), dict):
        out["history"] = {**history, "last_error": _times(dict(history["last_error"]), ("at",))}
    return out


def status(view: dict) -> dict:
    return dict(view)


def snapshot(view: dict) -> dict:
    """`/live`'s snapshot on connect: every part through its own serializer."""
    return {**view, "sensors": live_readings(view.get("sensors", [])), "routing": routing(view.get("routing")),
            "decisions": decisions(view.get("decisions", [])), "alerts": alerts(view.get("alerts", [])),
            "health": health(view["health"]) if view.get("health") else view.get("health"),
            "forecast": forecast(view.get("forecast"))}
