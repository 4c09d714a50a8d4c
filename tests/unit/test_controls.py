"""Operator controls on the control service alone: validation, the state the plan reads, audit."""
from __future__ import annotations

import re

import pytest

from app.domain.events import ControlAdopted, ControlApplied
from app.errors import InvalidInput, NotFound
from app.models import CONTROL_VALUES, ControlRequest
from app.services.alerts import AlertBook
from app.services.controls import ControlService
from tests.unit.networks import link, network, node

NOW = 1_700_000_000.0


def small_network():
    return network(
        [node("S", "source", capacity=100), node("J", "junction"), node("Z", "zone", demand=10, priority=1),
         node("Y", "zone", demand=10, priority=1)],
        [link("V1", "S", "J", 100, kind="valve"), link("P1", "J", "Z", 100, kind="pump", energy=0.5),
         link("L1", "J", "Y", 100)])


@pytest.fixture
def service():
    published = []
    alerts = AlertBook(lambda event: None, clock=lambda: NOW)
    controls = ControlService(small_network(), alerts, published.append, clock=lambda: NOW)
    controls.published_ = published
    return controls


def apply(service, action, target=None, value=None, reason=None, operator="ops", source_ip=None):
    return service.apply(ControlRequest(action=action, target=target, value=value, reason=reason),
                         operator, source_ip)


def invalid(service, action, target=None, value=None) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        apply(service, action, target, value)
    assert error.value.message == "invalid control"
    return error.value


def test_an_applied_control_is_answered_audited_and_published_without_its_source_ip(service):
    control = apply(service, "set_valve", "V1", 40, reason="pressure test", source_ip="10.0.0.9")
    assert control.pop("id").startswith("c")
    assert control == {"action": "set_valve", "target": "V1", "value": 40.0, "reason": "pressure test",
                       "operator": "ops", "origin": "operator", "timestamp": "2023-11-14T22:13:20Z",
                       "result": "applied"}
    [event] = service.published_
    assert isinstance(event, ControlApplied) and event.source_ip == "10.0.0.9"
    assert "source_ip" not in event.control and event.control["action"] == "set_valve"
    assert service.audit[-1]["source_ip"] == "10.0.0.9"          # the audit keeps who sent it
    assert service.recent(5)[0]["target"] == "V1"


def test_ids_are_unique_and_the_audit_lists_newest_first(service):
    ids = [apply(service, "set_valve", "V1", pct)["id"] for pct in (10, 20, 30)]
    assert len(set(ids)) == 3 and ids[0].endswith("-1") and ids[2].endswith("-3")
    assert [c["value"] for c in service.recent(10)] == [30.0, 20.0, 10.0]
    assert [c["value"] for c in service.recent(2)] == [30.0, 20.0]


def test_control_ids_are_never_reused_by_a_restarted_or_another_instance(service):
    # Two services started in the same second: a restart, or a second instance of a cluster.
    again = ControlService(small_network(), service.alerts, lambda event: None, clock=lambda: NOW)
    first, second = apply(service, "set_valve", "V1", 10)["id"], apply(again, "set_valve", "V1", 10)["id"]
    assert first != second
    for control_id in (first, second):
        assert re.fullmatch(rf"c{int(NOW):x}[0-9a-f]{{6}}-1", control_id), control_id


def test_valve_opening_and_pump_speed_are_what_the_plan_reads(service):
    assert service.link_factors() == {}
    assert service.link_settings() == {"V1": {"opening": 100.0}, "P1": {"running": True, "speed": 100.0}}
    assert service.link_status() == {}
    apply(service, "set_valve", "V1", 40)
    apply(service, "set_pump", "P1", 80)
    assert service.link_factors() == {"V1": 0.4, "P1": 0.8}
    assert service.link_settings() == {"V1": {"opening": 40.0}, "P1": {"running": True, "speed": 80.0}}
    assert service.link_status() == {}
    apply(service, "set_valve", "V1", 0)
    apply(service, "set_pump", "P1", "off")
    assert service.link_factors() == {"V1": 0.0, "P1": 0.0}
    assert service.link_settings()["P1"] == {"running": False, "speed": 0.0}
    assert service.link_status() == {"V1": "closed", "P1": "closed"}


def test_isolating_a_node_or_a_link_isolates_every_link_it_touches(service):
    assert apply(service, "isolate", "L1")["value"] is True
    assert service.isolated == {"L1"} and service.link_status() == {"L1": "isolated"}
    apply(service, "isolate", "Z")                           # a link's downstream end
    assert service.link_status() == {"L1": "isolated", "P1": "isolated"}
    assert apply(service, "restore", "L1")["value"] is False
    assert service.link_status() == {"P1": "isolated"}
    apply(service, "restore", "Z")
    apply(service, "isolate", "S")                           # a link's upstream end
    assert service.link_status() == {"V1": "isolated"}
    apply(service, "set_valve", "V1", 0)
    assert service.link_status() == {"V1": "isolated"}       # isolation says more than closed
    with pytest.raises(NotFound):
        apply(service, "isolate", "NOWHERE")
    apply(service, "restore", "S")
    apply(service, "restore", "S")                           # restoring twice is harmless
    assert service.isolated == set()


@pytest.mark.parametrize("value, stored, answer", [
    ("on", 100.0, "on"), ("ON", 100.0, "on"), ("Off", 0.0, "off"), (80, 80.0, 80.0),
    (100, 100.0, "on"), (0, 0.0, "off"), (0.5, 0.5, 0.5),
])
def test_pump_takes_on_off_or_a_speed(service, value, stored, answer):
    assert apply(service, "set_pump", "P1", value)["value"] == answer
    assert service.pump_speed["P1"] == stored


@pytest.mark.parametrize("value", [0, 0.0, 55.5, 100])
def test_valve_takes_any_opening_from_0_to_100(service, value):
    assert apply(service, "set_valve", "V1", value)["value"] == float(value)
    assert service.valve_open["V1"] == float(value)


@pytest.mark.parametrize("value", [-0.1, 100.1, "40", True, None])
def test_valve_refuses_other_openings(service, value):
    error = invalid(service, "set_valve", "V1", value)
    assert error.details == [{"field": "value",
                              "message": "set_valve takes the opening, a number 0-100 (%), e.g. 40"}]
    assert service.valve_open == {} and service.published_ == []


@pytest.mark.parametrize("value", ["fast", -1, 101, False])
def test_pump_refuses_other_values(service, value):
    error = invalid(service, "set_pump", "P1", value)
    assert error.details == [{"field": "value", "message": "set_pump takes 'on', 'off' or a speed 0-100 (%), "
                                                           f"e.g. 'off' or 80; not {value!r}"}]
    assert service.pump_speed == {}


def test_a_control_on_the_wrong_kind_of_link_says_what_the_link_is(service):
    assert invalid(service, "set_valve", "P1", 40).details == [
        {"field": "target", "message": "'P1' is a pump, not a valve"}]
    assert invalid(service, "set_pump", "V1", "on").details == [
        {"field": "target", "message": "'V1' is a valve, not a pump"}]
    with pytest.raises(NotFound) as missing:
        apply(service, "set_valve", "NOPE", 40)
    assert missing.value.message == "no link 'NOPE'"
    with pytest.raises(NotFound) as missing:
        apply(service, "isolate", "NOPE")
    assert missing.value.message == "no node or link 'NOPE'"


@pytest.mark.parametrize("action", ["set_valve", "set_pump", "isolate", "restore", "ack_alert"])
def test_a_control_without_a_target_says_what_it_needs(service, action):
    assert invalid(service, action, value=1).details == [
        {"field": "target", "message": f"{action} needs a target ({CONTROL_VALUES[action]})"}]


def test_operating_mode(service):
    assert service.mode == "manual"
    assert apply(service, "set_mode", value="AUTO")["value"] == "auto"
    assert service.mode == "auto"
    assert apply(service, "set_mode", target="Manual")["value"] == "manual"   # the target works too
    assert service.mode == "manual"
    for bad in ("fast", None):
        error = invalid(service, "set_mode", value=bad)
        assert error.details == [{"field": "value",
                                  "message": f"set_mode takes 'auto' or 'manual', not {bad!r}"}]
    assert service.mode == "manual"


def test_acknowledging_an_alert_through_a_control(service):
    alert = service.alerts.raise_("Z.ph", "quality_ph", "warning", "pH 9.2")
    assert apply(service, "ack_alert", alert.id, operator="lead")["value"] == alert.id
    assert service.alerts.get(alert.id).acknowledged_by == "lead"
    with pytest.raises(NotFound):
        apply(service, "ack_alert", "no-such-alert")


def test_reset_demo_runs_what_the_composition_root_gave_it(service):
    assert invalid(service, "reset_demo").details == [
        {"field": "action", "message": "reset_demo is not available on this server"}]
    calls = []
    service.reset_demo = lambda operator: calls.append(operator) or {"sensors": 2}
    assert apply(service, "reset_demo", operator="admin")["value"] == {"sensors": 2}
    assert calls == ["admin"]


def test_an_engine_command_is_sent_and_audited_but_constrains_no_plan(service):
    control = service.issue("set_valve", "V1", 30.0, "re-route around the leak")
    assert (control["operator"], control["origin"], control["value"], control["reason"]) == \
        ("engine", "engine", 30.0, "re-route around the leak")
    assert service.valve_open == {} and service.link_factors() == {}
    assert isinstance(service.published_[-1], ControlApplied)
    by_hand = service.issue("set_pump", "P1", "off", "applied recommendation", operator="ops", origin="decision")
    assert (by_hand["operator"], by_hand["origin"]) == ("ops", "decision")
    assert service.pump_speed == {}
    assert [c["id"] for c in service.recent(5)] == [by_hand["id"], control["id"]]


def test_a_control_adopted_from_another_instance_changes_the_same_state(service):
    def adopt(action, target=None, value=None, origin="operator"):
        service.adopt({"id": f"other-{len(service.audit)}", "action": action, "target": target,
                       "value": value, "origin": origin})
    adopt("set_mode", value="auto")
    adopt("isolate", "L1")
    adopt("set_valve", "V1", 25)
    adopt("set_pump", "P1", "off")
    assert (service.mode, service.isolated, service.valve_open, service.pump_speed) == \
        ("auto", {"L1"}, {"V1": 25.0}, {"P1": 0.0})
    adopt("set_pump", "P1", "on")
    assert service.pump_speed == {"P1": 100.0}
    adopt("set_pump", "P1", 60)
    assert service.pump_speed == {"P1": 60.0}
    adopt("restore", "L1")
    assert service.isolated == set()
    adopt("set_valve", "V1", 90, origin="engine")            # an engine command is no constraint
    adopt("isolate", "Z", origin="engine")
    assert service.valve_open == {"V1": 25.0} and service.isolated == set()
    assert len(service.audit) == 9 and service.recent(2)[1]["value"] == 90
    assert all(isinstance(e, ControlAdopted) for e in service.published_)
    assert [e.control["action"] for e in service.published_][-2:] == ["set_valve", "isolate"]
