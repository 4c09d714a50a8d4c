"""Operator controls reach the routing plan, the decisions feed and /live."""
from __future__ import annotations


import pytest
import requests
import socketio

from app.services.narration import SHORTFALL_MLD
from testkit.helpers import wait_for
from testkit.server import OPERATOR_TOKEN
from tests.live_client import LiveClient

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def control(server, body, headers=AUTH):
    return requests.post(server.url + "/api/control", json=body, headers=headers, timeout=10)



def routing(server):
    return requests.get(server.url + "/api/routing", timeout=5).json()


def source_output(plan, source_id):
    return next(s["output"] for s in plan["sources"] if s["node_id"] == source_id)


def test_isolating_a_source_replans_explains_and_broadcasts(server):
    plan = wait_for(lambda: routing(server), lambda p: p["status"] == "optimal")
    assert source_output(plan, "SRC_CWSS_1_3") > 0
    client = LiveClient(server.url)
    try:
        reply = control(server, {"action": "isolate", "target": "SRC_CWSS_1_3",
                                 "reason": "turbidity spike upstream"})
        assert reply.status_code == 200, reply.text
        applied = reply.json()["control"]
        assert applied["operator"] == "ops" and applied["action"] == "isolate"

        update = client.wait_for(lambda ev: [d for e, d in ev if e == "routing_update"
                                             and source_output(d, "SRC_CWSS_1_3") == 0])[0]
        assert update["status"] == "optimal"
        assert sum(f["flow"] for f in update["flows"] if f["from"] == "SRC_CWSS_1_3") == 0
        # Storage and the other sources cover it: no zone is cut more than before. (At the
        # morning peak West asks more than its three feeds carry, so it is cut either way.)
        before = {z["node_id"]: z["shortfall"] for z in plan["zones"]}
        assert all(z["shortfall"] <= before[z["node_id"]] + SHORTFALL_MLD for z in update["zones"]), update["zones"]
        assert client.wait_for(lambda ev: [d for e, d in ev if e == "control_update"])[0]["target"] == "SRC_CWSS_1_3"

        decisions = requests.get(server.url + "/api/decisions?limit=50").json()["decisions"]
        isolation = next(d for d in decisions if d["kind"] == "isolate_source")
        assert isolation["target"] == "SRC_CWSS_1_3"
        assert "isolated SRC_CWSS_1_3" in isolation["reason"] and "MLD" in isolation["action"]
        assert isolation["actions"][0]["target"] == "SRC_CWSS_1_3"
        assert any("operator restriction" in c for c in isolation["actions"][0]["causes"])
        assert client.wait_for(lambda ev: [d for e, d in ev if e == "decision" and d["kind"] == "isolate_source"])
        network = requests.get(server.url + "/api/network").json()
        assert {l["status"] for l in network["links"] if l["from"] == "SRC_CWSS_1_3"} == {"isolated"}
    finally:
        control(server, {"action": "restore", "target": "SRC_CWSS_1_3"})
        client.close()
    wait_for(lambda: routing(server), lambda p: source_output(p, "SRC_CWSS_1_3") > 0)


def test_closing_a_valve_caps_its_flow(server):
    # West's meter says 330 MLD: more than its other links (MNK Park 200, borewells 50) carry.
    assert requests.post(server.url + "/api/sensors", json=[{"sensor_id": "Z_WEST.flow", "value": 330.0}],
                         timeout=5).status_code == 202
    assert control(server, {"action": "set_valve", "target": "V_CJF_WEST", "value": 0}).status_code == 200
    try:
        plan = wait_for(lambda: routing(server),
                        lambda p: next(f for f in p["flows"] if f["link_id"] == "V_CJF_WEST")["flow"] == 0)
        west = next(z for z in plan["zones"] if z["node_id"] == "Z_WEST")
        # The rest of West's supply is MNK Park's valve (200) and borewells (50).
        assert west["shortfall"] == pytest.approx(max(0, west["demand"] - 250), abs=0.01)
        decisions = requests.get(server.url + "/api/decisions?limit=50").json()["decisions"]
        cut = next(a for d in decisions for a in d["actions"]
                   if a["kind"] == "zone_shortfall" and a["target"] == "Z_WEST")
        # The cause is the operator's valve setting, not priority.
        assert any(c.startswith("operator restriction") and "V_CJF_WEST" in c for c in cut["causes"])
        assert not any(c.startswith("priority") for c in cut["causes"])
    finally:
        control(server, {"action": "set_valve", "target": "V_CJF_WEST", "value": 100})


@pytest.mark.parametrize("body, status, code", [
    ({"action": "set_valve", "target": "V_CJF_WEST", "value": 150}, 422, "validation_error"),
    ({"action": "set_valve", "target": "P_TAT_BNP", "value": 50}, 422, "validation_error"),
    ({"action": "set_pump", "target": "P_TAT_BNP", "value": "sideways"}, 422, "validation_error"),
    ({"action": "isolate", "target": "NO_SUCH_NODE"}, 404, "not_found"),
    ({"action": "ack_alert", "target": "no-such-alert"}, 404, "not_found"),
    ({"action": "flood"}, 422, "validation_error"),
    ({"action": "set_mode", "value": "chaos"}, 422, "validation_error"),
])
def test_bad_controls_are_refused_clearly(server, body, status, code):
    reply = control(server, body)
    assert reply.status_code == status and reply.json()["error"]["code"] == code


def test_control_requires_an_operator_token(server):
    body = {"action": "set_mode", "value": "manual"}
    assert control(server, body, headers={}).status_code == 401
    assert control(server, body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert requests.get(server.url + "/api/controls").status_code == 401
    audit = requests.get(server.url + "/api/controls", headers=AUTH).json()["controls"]
    assert all("source_ip" in c and OPERATOR_TOKEN not in str(c) for c in audit)


def test_control_namespace_runs_the_same_path(server):
    refused = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(server.url, namespaces=["/control"], auth={"token": "wrong"}, wait_timeout=5)
    operator = socketio.Client(reconnection=False)
    operator.connect(server.url, namespaces=["/control"], auth={"token": OPERATOR_TOKEN}, wait_timeout=5)
    try:
        reply = operator.call("control", {"action": "set_pump", "target": "P_TAT_BNP", "value": "off"},
                              namespace="/control", timeout=5)
        assert reply["ok"] is True and reply["control"]["value"] == "off"
        bad = operator.call("control", {"action": "set_pump", "target": "P_TAT_BNP", "value": 500},
                            namespace="/control", timeout=5)
        assert bad["error"]["code"] == "validation_error"
        plan = wait_for(lambda: routing(server),
                        lambda p: next(f for f in p["flows"] if f["link_id"] == "P_TAT_BNP")["flow"] == 0)
        assert plan["status"] == "optimal"
    finally:
        operator.call("control", {"action": "set_pump", "target": "P_TAT_BNP", "value": "on"},
                      namespace="/control", timeout=5)
        operator.disconnect()


def test_auto_mode_turns_decisions_into_commands(start_server):
    server = start_server(OPERATING_MODE="manual")
    wait_for(lambda: routing(server), lambda p: p["status"] == "optimal")
    assert control(server, {"action": "set_mode", "value": "auto"}).json()["control"]["value"] == "auto"
    client = LiveClient(server.url)
    try:
        # Without its largest source (Cauvery stage IV, 770 MLD) the plan moves water through
        # other valves and pumps at any hour. (Closing one valve did not always: whether
        # another valve moved past the deadband depended on the hour's demand.)
        control(server, {"action": "isolate", "target": "SRC_CWSS_4"})
        command = client.wait_for(lambda ev: [d for e, d in ev if e == "control_update"
                                              and d["origin"] == "engine"])[0]
        assert command["action"] in ("set_valve", "set_pump") and command["operator"] == "engine"
        audit = requests.get(server.url + "/api/controls", headers=AUTH).json()["controls"]
        assert any(c["origin"] == "engine" for c in audit)
        # The decision behind it is announced applied, naming the controls it sent.
        decision = client.wait_for(lambda ev: [d for e, d in ev if e == "decision"
                                               and command["id"] in (d.get("commands") or [])])[0]
        assert (decision["state"], decision["state_by"]) == ("applied", "engine")
    finally:
        client.close()


def test_manual_mode_only_recommends(start_server):
    server = start_server(OPERATING_MODE="manual")
    wait_for(lambda: routing(server), lambda p: p["status"] == "optimal")
    control(server, {"action": "set_valve", "target": "V_CJF_WEST", "value": 0})
    decisions = wait_for(lambda: requests.get(server.url + "/api/decisions?limit=50").json()["decisions"],
                         lambda ds: any(a["kind"] == "valve_setting" for d in ds for a in d["actions"]))
    assert all(d["state"] in ("recommended", "superseded") for d in decisions)
    audit = requests.get(server.url + "/api/controls", headers=AUTH).json()["controls"]
    assert all(c["origin"] == "operator" for c in audit)
