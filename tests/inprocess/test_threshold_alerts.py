"""Threshold alerts as operators see them, raised by readings sent to the API."""
from __future__ import annotations


def open_alerts(client) -> dict:
    return {(a["sensor_id"], a["condition"]): a for a in client.get("/api/alerts").json["alerts"]}


def test_a_faulty_reading_in_a_batch_does_not_hide_the_readings_after_it(client):
    reply = client.post("/api/sensors", json={"readings": [
        {"sensor_id": "LAB.ph", "metric": "ph", "value": 15.0},           # outside what pH can be: bad
        {"sensor_id": "LAB.turbidity", "metric": "turbidity", "value": 60.0},
    ]})
    assert reply.status_code == 202, reply.json
    alerts = open_alerts(client)
    assert set(alerts) == {("LAB.turbidity", "quality_turbidity")}
    assert alerts[("LAB.turbidity", "quality_turbidity")]["severity"] == "critical"
