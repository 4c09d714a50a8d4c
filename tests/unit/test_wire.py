"""The serializers of app/wire.py: times to ISO 8601 UTC with Z, internals left inside."""
from datetime import datetime, timedelta, timezone

import pytest

from app import wire
from app.domain.records import (Action, Alarm, Command, CommandParams, CommandStep, ControlMessage, ControlOrder,
                                Decision, LiveReading, PlannedFlow, PlannedReservoir, PlannedSource, PlannedZone,
                                Reading, Routing)

NOON = datetime(2026, 12, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)


@pytest.mark.parametrize("given", [
    NOON.timestamp(), NOON, NOON.replace(tzinfo=None), "2026-12-01T12:00:00.500000Z",
    "2026-12-01T17:30:00.500000+05:30", NOON.astimezone(timezone(timedelta(hours=-3))),
])
def test_every_form_of_a_time_becomes_utc_with_z(given):
    assert wire.iso_time(given) == "2026-12-01T12:00:00.500000Z"


def test_no_time_stays_none_and_a_bool_is_refused():
    assert wire.iso_time(None) is None and wire.iso_time("") is None
    with pytest.raises(TypeError):
        wire.iso_time(True)


def test_a_reading_leaves_its_epoch_inside_and_keeps_the_rest():
    record = Reading(sensor_id="S1", value=2.0, metric="flow", unit="MLD", node_id="N", zone="Z",
                     timestamp="2026-12-01T12:00:00Z", ts=1796126400.0, latency_ms=None, source="sensor",
                     quality="suspect", quality_reason="flatline")
    out = wire.reading(record)
    # The keys, in the order clients have always had them (JSON is written in this order).
    assert list(out.items()) == [
        ("sensor_id", "S1"), ("value", 2.0), ("metric", "flow"), ("unit", "MLD"), ("node_id", "N"),
        ("zone", "Z"), ("timestamp", "2026-12-01T12:00:00Z"), ("latency_ms", None), ("source", "sensor"),
        ("quality", "suspect"), ("quality_reason", "flatline")]
    assert wire.readings([record]) == [out]
    assert wire.sensor_detail(record, [{"t": 1796126400.0, "v": 2.0}])["recent"] == \
        [{"t": "2026-12-01T12:00:00Z", "v": 2.0}]
    # A good reading has no reason; a listing adds when it came and whether it is stale.
    record.quality, record.quality_reason = "good", None
    listed = wire.live_readings([LiveReading(record, 1796126410.5, True)])
    assert listed == [{**wire.reading(record), "received_at": "2026-12-01T12:00:10.500000Z", "stale": True}]
    assert "quality_reason" not in listed[0]
    assert wire.latest_legacy("S1", record) == {"sensorId": "S1", "zone": "Z", "value": 2.0, "latencyMs": None,
                                                "timestamp": "2026-12-01T12:00:00Z", "found": True}


def test_resources_get_iso_times_and_lose_internal_fields():
    assert wire.forecast({"generated_at": 1796126400.0, "step_s": 900.0,
                          "zones": [{"node_id": "Z", "steps": [{"t": 1796127300.0, "demand": 4}]}]}) == {
        "generated_at": "2026-12-01T12:00:00Z", "step_s": 900.0,
        "zones": [{"node_id": "Z", "steps": [{"t": "2026-12-01T12:15:00Z", "demand": 4}]}]}
    assert wire.log_record({"time": 1796126400.0, "level": "INFO"})["time"] == "2026-12-01T12:00:00Z"
    assert wire.simulation_event({"id": 1, "start": 1796126400.0, "end": 1796127300.0}) == \
        {"id": 1, "start": "2026-12-01T12:00:00Z", "end": "2026-12-01T12:15:00Z"}
    shelved = wire.alert(Alarm("a", "s", "c", "warning", raised_at="2026-12-01T17:30:00+05:30",
                               shelved_until=1796126400.0))
    assert (shelved["raised_at"], shelved["shelved"], shelved["shelved_until"]) == \
        ("2026-12-01T12:00:00Z", True, "2026-12-01T12:00:00Z")
    control = {"id": "c1", "timestamp": "2026-12-01T12:00:00Z", "source_ip": "10.0.0.9",
               "command": {"id": "cmd-1", "expires_ts": 3.0}}
    assert wire.control(control) == {"id": "c1", "timestamp": "2026-12-01T12:00:00Z", "command": {"id": "cmd-1"}}
    assert wire.control_audit([control])[0]["source_ip"] == "10.0.0.9"
    assert wire.audit_entry({"at": 1796126400.0, "at_ts": 1796126400.0, "kind": "write_refused"}) == \
        {"at": "2026-12-01T12:00:00Z", "kind": "write_refused"}


def decision(**changes) -> Decision:
    fields = dict(id="d1-1", timestamp="2026-12-01T12:00:00Z", kind="valve_setting", action="Set valve V",
                  target="V", reason="why", confidence=0.8, confidence_reason="fresh", topic="plan",
                  actions=[Action("valve_setting", "V", "Set valve V to 40%", ControlOrder("set_valve", "V", 40.0),
                                  ["capacity: V is full at 10 MLD"]),
                           Action("leak_hold", "Z", "Serve Z 5 MLD", None, [])],
                  state="recommended", state_at="2026-12-01T12:00:00Z")
    return Decision(**{**fields, **changes})


def test_a_decision_on_the_wire_keeps_its_fields_in_order_and_its_optional_parts_only_when_set():
    out = wire.decision(decision())
    assert list(out) == ["id", "timestamp", "kind", "action", "target", "reason", "confidence",
                         "confidence_reason", "topic", "actions", "state", "state_at", "state_by"]
    assert out["actions"] == [
        {"kind": "valve_setting", "target": "V", "text": "Set valve V to 40%",
         "command": {"action": "set_valve", "target": "V", "value": 40.0}, "causes": ["capacity: V is full at 10 MLD"]},
        {"kind": "leak_hold", "target": "Z", "text": "Serve Z 5 MLD", "command": None, "causes": []}]
    lone = Action("leak_suspected", "Z", "Inspect Z", causes=None)       # a decision's own action names no causes
    applied = wire.decision(decision(actions=[lone], state="applied", state_by="ops",
                                     evidence={"rule": "night_flow"}, commands=["c1-1"]))
    assert list(applied)[-3:] == ["state_by", "evidence", "commands"]
    assert applied["actions"] == [{"kind": "leak_suspected", "target": "Z", "text": "Inspect Z", "command": None}]
    assert (applied["evidence"], applied["commands"], applied["state_by"]) == ({"rule": "night_flow"}, ["c1-1"], "ops")


def test_a_decision_comes_back_from_its_wire_shape_unchanged():
    """How the cluster's leader shares decisions: the other instances answer the same."""
    for record in (decision(), decision(actions=[Action("leak_suspected", "Z", "Inspect Z", causes=None)],
                                        evidence={"rule": "r"}, commands=[], state="applied", state_by="engine")):
        assert wire.decision_record(wire.decision(record)) == record


def command(**changes) -> Command:
    fields = dict(id="cmd-1", device_id="dev-1", control_id="c1-1", method="set_valve",
                  params=CommandParams("V1", 40.0), state="queued", timeout_s=30.0,
                  created_at="2026-12-01T12:00:00Z", created_ts=1796126400.0, expires_at="2026-12-02T12:00:00Z",
                  expires_ts=1796212800.0, updated_at="2026-12-01T12:00:00Z",
                  history=[CommandStep("queued", "2026-12-01T12:00:00Z")], deadline_ts=1796126430.0,
                  http_fetched=True)
    return Command(**{**fields, **changes})


def test_a_command_on_the_wire_leaves_its_deadlines_inside():
    out = wire.command(command())
    assert out == {"id": "cmd-1", "device_id": "dev-1", "control_id": "c1-1", "method": "set_valve",
                   "params": {"target": "V1", "value": 40.0}, "state": "queued", "timeout_s": 30.0,
                   "created_at": "2026-12-01T12:00:00Z", "expires_at": "2026-12-02T12:00:00Z",
                   "updated_at": "2026-12-01T12:00:00Z", "attempts": 0, "result": None,
                   "history": [{"state": "queued", "at": "2026-12-01T12:00:00Z"}]}
    assert list(out) == ["id", "device_id", "control_id", "method", "params", "state", "timeout_s", "created_at",
                         "expires_at", "updated_at", "attempts", "result", "history"]
    sent = wire.command(command(last_sent_at="2026-12-01T12:00:01Z", attempts=1))
    assert list(sent)[-1] == "last_sent_at" and sent["last_sent_at"] == "2026-12-01T12:00:01Z"
    assert wire.commands([command()]) == [out]
    assert wire.command_summary(command()) == {"id": "cmd-1", "device_id": "dev-1", "state": "queued"}
    assert wire.command_request(command()) == {"id": "cmd-1", "method": "set_valve",
                                               "params": {"target": "V1", "value": 40.0}, "timeout_s": 30.0,
                                               "expires_at": "2026-12-02T12:00:00Z"}


def routing(**changes) -> Routing:
    fields = dict(generated_at="2026-12-01T12:00:00Z", status="optimal", message="", objective=1200.5, solve_ms=3.21,
                  flows=[PlannedFlow("V", "S1", "W", 80.0, 200.0)],
                  zones=[PlannedZone("W", 150.0, 140.0, 10.0), PlannedZone("E", 90.0, 90.0, 0.0, metered=110.0)],
                  sources=[PlannedSource("S1", 230.0, 300.0), PlannedSource("S2", 0.0, 100.0, "critical quality")],
                  has_plan=True, mode="manual", confidence=0.7, confidence_reason="7 of 10 meters live",
                  reservoirs=[PlannedReservoir("R", 40.0, 60.0)])
    return Routing(**{**fields, **changes})


def test_the_routing_plan_on_the_wire_names_each_part_and_a_leak_held_zone_only_while_held():
    out = wire.routing(routing())
    assert list(out) == ["generated_at", "status", "message", "mode", "objective", "solve_ms", "confidence",
                         "confidence_reason", "flows", "zones", "sources", "reservoirs"]
    assert out["flows"] == [{"link_id": "V", "from": "S1", "to": "W", "flow": 80.0, "capacity": 200.0}]
    assert out["zones"] == [{"node_id": "W", "demand": 150.0, "supplied": 140.0, "shortfall": 10.0},
                            {"node_id": "E", "demand": 90.0, "supplied": 90.0, "shortfall": 0.0,
                             "leak_held": True, "metered": 110.0}]
    assert out["sources"][1] == {"node_id": "S2", "output": 0.0, "capacity": 100.0, "excluded": "critical quality"}
    assert out["reservoirs"] == [{"node_id": "R", "volume_end": 40.0, "max_volume": 60.0}]
    assert (out["mode"], out["confidence"], out["confidence_reason"]) == ("manual", 0.7, "7 of 10 meters live")
    assert wire.routing(None) is None


def test_before_the_first_plan_routing_has_only_its_status():
    pending = Routing(None, "pending", "", None, None)
    assert wire.routing(pending) == {"generated_at": None, "status": "pending", "message": "", "objective": None,
                                     "solve_ms": None, "flows": [], "zones": [], "sources": []}


def test_the_routing_plan_comes_back_from_its_wire_shape_unchanged():
    """How the leader's plan reaches the other instances of a cluster."""
    for record in (routing(), Routing(None, "infeasible", "no plan yet", None, 2.5)):
        assert wire.routing_record(wire.routing(record)) == record


def test_a_control_on_its_retained_topic_says_what_to_set_and_which_control_it_was():
    message = ControlMessage("c1-1", "set_valve", "V1", 40.0, "2026-12-01T12:00:00Z")
    assert list(wire.control_message(message).items()) == [
        ("action", "set_valve"), ("target", "V1"), ("value", 40.0), ("id", "c1-1"), ("timestamp", "2026-12-01T12:00:00Z")]
