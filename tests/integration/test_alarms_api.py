"""Alarms over HTTP (ISA-18.2 endpoints beside the ack_alert control), control value
messages, and the audited demo reset, against one real server."""
from __future__ import annotations

import requests

from testkit.helpers import wait_for
from testkit.server import OPERATOR_TOKEN

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def raise_chlorine(server, sensor_id):
    requests.post(server.url + "/api/ingest", json={"sensor_id": sensor_id, "metric": "chlorine",
                                                    "unit": "mg/L", "value": 0.02}, timeout=5)
    alerts = wait_for(lambda: requests.get(server.url + "/api/alerts", timeout=5).json()["alerts"],
                      lambda listed: any(a.get("sensor_id") == sensor_id for a in listed))
    return next(a for a in alerts if a.get("sensor_id") == sensor_id)


def test_ack_shelve_return_and_summary(server):
    alarm = raise_chlorine(server, "alarm-1.chlorine")
    assert alarm["alarm_state"] == "active_unacknowledged" and alarm["severity"] == "critical"
    assert requests.post(server.url + f"/api/alerts/{alarm['id']}/ack").status_code == 401
    acked = requests.post(server.url + f"/api/alerts/{alarm['id']}/ack", headers=AUTH).json()["alert"]
    assert acked["alarm_state"] == "active_acknowledged" and acked["acknowledged_by"] == "ops"

    bad = requests.post(server.url + f"/api/alerts/{alarm['id']}/shelve", headers=AUTH, json={"duration_s": 0})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "duration_s"
    shelved = requests.post(server.url + f"/api/alerts/{alarm['id']}/shelve", headers=AUTH,
                            json={"duration_s": 1.5, "reason": "probe cleaning"}).json()["alert"]
    assert shelved["shelved"] and shelved["shelved_until"].endswith("Z")
    summary = requests.get(server.url + "/api/alerts/summary").json()
    assert summary["shelved"] >= 1
    # It returns by itself (the server's scheduled expiry, not a read), and the return is audited.
    back = wait_for(lambda: requests.get(server.url + f"/api/alerts/{alarm['id']}").json()["alert"],
                    lambda a: not a["shelved"], timeout=10)
    assert [(e["action"], e["by"]) for e in back["events"]][-3:] == [
        ("acknowledged", "ops"), ("shelved", "ops"), ("shelf_expired", "system")]

    second = raise_chlorine(server, "alarm-2.chlorine")
    legacy = requests.post(server.url + "/api/control", headers=AUTH,
                           json={"action": "ack_alert", "target": second["id"]})
    assert legacy.status_code == 200                        # the original control keeps working
    assert requests.get(server.url + f"/api/alerts/{second['id']}").json()["alert"]["acknowledged"]


def test_control_values_say_what_is_expected(server):
    reply = requests.post(server.url + "/api/control", headers=AUTH,
                          json={"action": "set_pump", "target": "P_TAT_SOUTH", "value": "half"})
    assert reply.status_code == 422
    message = reply.json()["error"]["details"][0]["message"]
    assert "'on', 'off' or a speed 0-100" in message and "'half'" in message
    spec = requests.get(server.url + "/openapi.json").json()
    body = spec["paths"]["/api/control"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert any(e.get("action") == "set_pump" and e.get("value") == "off" for e in schema["examples"])
    assert "set_pump" in schema["properties"]["action"]["description"]


def test_reset_demo_clears_adhoc_sensors_alerts_and_decisions_and_is_audited(server):
    raise_chlorine(server, "tour.chlorine")
    reply = requests.post(server.url + "/api/control", headers=AUTH,
                          json={"action": "reset_demo", "reason": "end of the tour"})
    assert reply.status_code == 200, reply.text
    cleared = reply.json()["control"]["value"]
    assert cleared["sensors"] >= 1 and cleared["alerts"] >= 1
    assert requests.get(server.url + "/api/sensors/tour.chlorine").status_code == 404
    assert requests.get(server.url + "/api/alerts?state=all").json()["alerts"] == []
    audit = requests.get(server.url + "/api/controls", headers=AUTH).json()["controls"]
    assert audit[0]["action"] == "reset_demo" and audit[0]["operator"] == "ops"


def test_admin_reset_is_audited_and_needs_the_admin_role(start_server):
    server = start_server(ADMIN_TOKENS="lead=admin-secret")
    raise_chlorine(server, "admin-tour.chlorine")
    assert requests.post(server.url + "/api/admin/reset", headers=AUTH).status_code == 403   # operator, not admin
    reply = requests.post(server.url + "/api/admin/reset", headers={"Authorization": "Bearer admin-secret"},
                          json={"reason": "after the demo"})
    assert reply.status_code == 200 and reply.json()["control"]["value"]["alerts"] >= 1
    assert requests.get(server.url + "/api/sensors/admin-tour.chlorine").status_code == 404
    audit = requests.get(server.url + "/api/controls", headers=AUTH).json()["controls"]
    assert (audit[0]["action"], audit[0]["operator"], audit[0]["reason"]) == ("reset_demo", "lead", "after the demo")
