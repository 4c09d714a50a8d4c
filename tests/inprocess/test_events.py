"""Consequences of events, seen through the API: the bus keeps requests whole."""
from app.domain.events import ControlApplied, ReadingsAccepted

from tests.inprocess.conftest import OPERATOR_HEADERS


def test_a_failing_control_handler_does_not_turn_an_applied_control_into_an_error(client, bhs):
    def broken(event):
        raise RuntimeError("audit sink down")
    bhs.bus.subscribe(ControlApplied, broken)
    reply = client.post("/api/control", json={"action": "set_valve", "target": "V_CJF_WEST",
                                              "value": 40}, headers=OPERATOR_HEADERS)
    assert reply.status_code == 200 and reply.json["ok"] is True
    assert bhs.controls.valve_open["V_CJF_WEST"] == 40.0
    # The other handlers still ran: the device got its command.
    assert bhs.commands.desired["V_CJF_WEST"].value == 40.0
    metrics = client.get("/metrics").text
    assert 'handler_errors_total{event="ControlApplied",handler=' in metrics
    assert "broken" in metrics


def test_a_failing_reading_handler_loses_no_reading(client, bhs):
    def broken(event):
        raise RuntimeError("analysis bug")
    bhs.bus.subscribe(ReadingsAccepted, broken)
    assert client.post("/api/ingest", json={"sensor_id": "S1", "value": 3.5}).status_code == 201
    assert client.get("/api/sensors/S1").json["value"] == 3.5
    assert bhs.history.written == 1


def test_an_alert_reaches_live_clients_and_history(client, bhs, live):
    live.get_received("/live")   # the snapshot
    bhs.alerts.raise_("Z_SOUTH.ph", "quality_ph", "warning", "pH 9.4", node_id="Z_SOUTH",
                      sensor_id="Z_SOUTH.ph", metric="ph", value=9.4, threshold=9.0)
    names = [m["name"] for m in live.get_received("/live")]
    assert "alert" in names
    assert [e["state"] for e in bhs.history.events("alert", 10)] == ["active"]
