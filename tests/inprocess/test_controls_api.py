"""Controls as operators and devices see them: the network view and the command a device gets."""
from __future__ import annotations

import pytest

from app import wire
from tests.inprocess.conftest import OPERATOR_HEADERS

PUMP, VALVE = "P_TAT_WEST", "V_CJF_WEST"


def network_link(client, link_id: str) -> dict:
    return next(link for link in client.get("/api/network").json["links"] if link["id"] == link_id)


@pytest.mark.parametrize("speed, running, status", [(1, True, "open"), (0.5, True, "open"),
                                                    (0, False, "closed")])
def test_a_pump_at_any_speed_above_zero_is_running_on_the_network_view(client, speed, running, status):
    reply = client.post("/api/control", json={"action": "set_pump", "target": PUMP, "value": speed},
                        headers=OPERATOR_HEADERS)
    assert reply.status_code == 200, reply.json
    link = network_link(client, PUMP)
    assert (link["running"], link["speed"], link["status"]) == (running, float(speed), status)


def test_an_engine_command_reaches_its_device_and_the_audit_trail(client, bhs):
    control = bhs.controls.issue("set_valve", VALVE, 30.0, "re-route around the leak")
    assert control["target"] == VALVE
    sent = wire.control_message(bhs.commands.desired[VALVE])   # what the retained topic control/<target> holds
    assert {k: sent[k] for k in ("action", "target", "value", "id")} == \
        {"action": "set_valve", "target": VALVE, "value": 30.0, "id": control["id"]}
    assert "mode" not in bhs.commands.desired
    [audited] = client.get("/api/controls?limit=1", headers=OPERATOR_HEADERS).json["controls"]
    assert (audited["action"], audited["target"], audited["value"], audited["origin"]) == \
        ("set_valve", VALVE, 30.0, "engine")
