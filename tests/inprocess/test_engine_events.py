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
