"""The engine and its decision book raise PlanChanged and DecisionMade on the bus themselves;
operators apply and dismiss decisions through the DecisionBook the bootstrap hands over."""
from __future__ import annotations

from app.domain.events import DecisionMade, PlanChanged
from tests.inprocess.conftest import OPERATOR_HEADERS


def test_a_planning_run_raises_its_events_on_the_bus(bhs):
    seen = []
    bhs.bus.subscribe(PlanChanged, seen.append)
    bhs.bus.subscribe(DecisionMade, seen.append)
    view = bhs.engine.run_once(["test"])
    plans = [e for e in seen if isinstance(e, PlanChanged)]
    assert len(plans) == 1 and plans[0].view == view and plans[0].plan is bhs.engine.plan
    decisions = [e.decision for e in seen if isinstance(e, DecisionMade)]
    assert decisions and decisions[0].state == "recommended"    # the first plan is explained


def test_operators_apply_and_dismiss_through_the_decision_book(client, bhs):
    assert bhs.decisions is bhs.engine.book
    first = bhs.decisions.publish(bhs.decisions.new("valve_setting", "Open V1", "V1", "test", 0.9, "test",
                                                    topic="t1"))
    second = bhs.decisions.publish(bhs.decisions.new("valve_setting", "Open V2", "V2", "test", 0.9, "test",
                                                     topic="t2"))
    applied = client.post(f"/api/decisions/{first.id}/apply", headers=OPERATOR_HEADERS)
    assert applied.status_code == 200 and applied.json["decision"]["state"] == "applied"
    dismissed = client.post(f"/api/decisions/{second.id}/dismiss", headers=OPERATOR_HEADERS)
    assert dismissed.status_code == 200 and dismissed.json["decision"]["state"] == "dismissed"
    again = client.post(f"/api/decisions/{second.id}/apply", headers=OPERATOR_HEADERS)
    assert again.status_code == 409 and again.json["error"]["code"] == "conflict"


def test_in_auto_mode_a_decision_is_announced_applied_with_the_controls_it_sent(client, bhs, live):
    """The feed must not offer Apply for a decision the engine has already applied."""
    bhs.engine.run_once(["start-up"])
    assert client.post("/api/control", json={"action": "set_mode", "value": "auto"},
                       headers=OPERATOR_HEADERS).status_code == 200
    # Without its largest source, the plan moves water through other valves: the engine commands them.
    assert client.post("/api/control", json={"action": "isolate", "target": "SRC_CWSS_4"},
                       headers=OPERATOR_HEADERS).status_code == 200
    live.get_received("/live")
    bhs.engine.run_once(["operator isolated SRC_CWSS_4"])
    events = live.get_received("/live")
    announced = [m["args"][0] for m in events if m["name"] == "decision"]
    # The first plan's recommendation, superseded; then the new decision, once, applied.
    assert [d["state"] for d in announced] == ["superseded", "applied"]
    announced = announced[-1]
    assert announced["state_by"] == "engine"
    sent = [m["args"][0]["id"] for m in events if m["name"] == "control_update" and m["args"][0]["origin"] == "engine"]
    assert sent and announced["commands"] == sent
    again = client.post(f"/api/decisions/{announced['id']}/apply", headers=OPERATOR_HEADERS)
    assert again.status_code == 409
    history = [e["state"] for e in bhs.history.events("decision", 10) if e["id"] == announced["id"]]
    assert history == ["applied", "recommended"]        # newest first: both states are audited
