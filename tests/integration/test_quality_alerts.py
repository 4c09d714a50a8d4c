"""Water quality end to end: alerts with a lifecycle, offline sensors, WQI, forecasts."""
from __future__ import annotations

import json
import time

import pytest
import requests

from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN
from tests.live_client import LiveClient

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}




def alerts(server, state="active"):
    return requests.get(server.url + "/api/alerts", params={"state": state}, timeout=5).json()["alerts"]


def test_alert_lifecycle_over_http_and_socketio(start_server):
    server = start_server(ALERT_CLEAR_AFTER_S="1")
    client = LiveClient(server.url)
    try:
        requests.post(server.url + "/api/ingest", json={"sensor_id": "Z_SOUTH.ph", "value": 7.2})
        requests.post(server.url + "/api/ingest", json={"sensor_id": "Z_SOUTH.ph", "value": 9.6})
        raised = client.wait_for(lambda ev: [d for e, d in ev if e == "alert" and d["state"] == "active"])[0]
        assert raised["severity"] == "warning" and raised["metric"] == "ph" and raised["threshold"] == 9.0
        assert raised["node_id"] == "Z_SOUTH" and raised["sensor_id"] == "Z_SOUTH.ph"
        # The same condition again escalates the same alert; nothing is duplicated.
        requests.post(server.url + "/api/ingest", json={"sensor_id": "Z_SOUTH.ph", "value": 10.4})
        escalated = client.wait_for(lambda ev: [d for e, d in ev if e == "alert" and d["severity"] == "critical"])[0]
        assert escalated["id"] == raised["id"]
        assert len([a for a in alerts(server) if a["sensor_id"] == "Z_SOUTH.ph"]) == 1

        ack = requests.post(server.url + "/api/control", headers=AUTH,
                            json={"action": "ack_alert", "target": raised["id"]})
        assert ack.status_code == 200
        client.wait_for(lambda ev: [d for e, d in ev if e == "alert" and d["state"] == "acknowledged"])
        assert alerts(server)[0]["acknowledged_by"] == "ops"

        for _ in range(3):                                # back in range past the 1 s window
            requests.post(server.url + "/api/ingest", json={"sensor_id": "Z_SOUTH.ph", "value": 7.4})
            time.sleep(0.6)
        cleared = client.wait_for(lambda ev: [d for e, d in ev if e == "alert" and d["state"] == "cleared"])[0]
        assert cleared["id"] == raised["id"]
        assert alerts(server) == []
        assert [a["state"] for a in alerts(server, "all") if a["id"] == raised["id"]] == ["cleared"]
        health = requests.get(server.url + "/api/health").json()
        assert health["network"]["active_alerts"] == 0
    finally:
        client.close()


def test_physically_impossible_values_are_flagged_bad_not_alerted(server):
    requests.post(server.url + "/api/ingest", json={"sensor_id": "qa-ph", "metric": "ph", "value": 15.5})
    record = requests.get(server.url + "/api/sensors/qa-ph").json()
    assert record["quality"] == "bad" and "physical" in record["quality_reason"]
    assert not [a for a in alerts(server) if a["sensor_id"] == "qa-ph"]


def test_silent_sensor_raises_an_offline_alert_and_clears_when_back(start_server, tmp_path):
    network = {"name": "tiny", "nodes": [
        {"id": "S", "kind": "source", "name": "Source", "lat": 12.9, "lon": 77.5, "capacity": 10},
        {"id": "Z", "kind": "zone", "name": "Zone", "lat": 12.9, "lon": 77.6, "demand": 5, "priority": 1}],
        "links": [{"id": "L", "from": "S", "to": "Z", "kind": "pipe", "capacity": 10}],
        "sensors": [{"id": "Z.flow", "node": "Z", "metric": "flow", "unit": "MLD", "interval_s": 0.5}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(network))
    server = start_server(NETWORK_FILE=str(path))
    requests.post(server.url + "/api/ingest", json={"sensor_id": "Z.flow", "value": 5.0})
    offline = wait_for(lambda: alerts(server), lambda a: any(x["condition"] == "sensor_offline" for x in a))
    assert offline[0]["sensor_id"] == "Z.flow" and offline[0]["severity"] == "warning"
    requests.post(server.url + "/api/ingest", json={"sensor_id": "Z.flow", "value": 5.1})
    wait_for(lambda: alerts(server), lambda a: not any(x["condition"] == "sensor_offline" for x in a), timeout=5)


def test_wqi_of_stations_from_their_latest_readings(server):
    readings = [{"sensor_id": "SRC_TG_HALLI.bod", "value": 2.2}, {"sensor_id": "SRC_TG_HALLI.do", "value": 5.5},
                {"sensor_id": "SRC_TG_HALLI.fc", "value": 6}, {"sensor_id": "SRC_TG_HALLI.ph", "value": 7.6}]
    assert requests.post(server.url + "/api/sensors", json=readings).status_code == 202
    stations = requests.get(server.url + "/api/wqi").json()["stations"]
    station = next(s for s in stations if s["node_id"] == "SRC_TG_HALLI")
    assert station["wqi"] == pytest.approx(83.2, abs=0.5) and station["band"] == "good to excellent"
    assert station["parameters"] == {"bod": 2.2, "do": 5.5, "fc": 6.0, "ph": 7.6}
    worst = requests.get(server.url + "/api/health").json()["network"]["wqi_worst"]
    assert worst is not None and worst["wqi"] <= station["wqi"]


def test_forecast_appears_once_slots_complete(server):
    client = LiveClient(server.url)
    try:
        now = time.time()
        start = now - 50 * 60
        readings = [{"sensor_id": "Z_CENTRAL.flow", "value": 150.0 + (k % 5), "timestamp": stamp(start + 60 * k)}
                    for k in range(50)]
        assert requests.post(server.url + "/api/sensors", json=readings).status_code == 202
        update = client.wait_for(lambda ev: [d for e, d in ev if e == "prediction_update"])[0]
        zone = next(z for z in update["zones"] if z["node_id"] == "Z_CENTRAL")
        assert len(zone["steps"]) == 4 and 149 <= zone["steps"][0]["demand"] <= 155
        forecast = requests.get(server.url + "/api/forecast").json()
        assert any(z["node_id"] == "Z_CENTRAL" for z in forecast["zones"])
    finally:
        client.close()


# Contamination in the simulator (a critical alert, the source excluded from the plan) is
# tests/inprocess/test_simulated_events.py: on a manual clock it needs no waiting.


def test_open_alerts_survive_a_restart(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    requests.post(server.url + "/api/ingest", json={"sensor_id": "Z_EAST.chlorine", "value": 0.05})
    raised = wait_for(lambda: alerts(server), lambda a: a)[0]
    wait_for(lambda: influx.count(db, "alert"), lambda n: n >= 1)
    server.stop()
    again = start_server(**env)
    restored = alerts(again)
    assert [a["id"] for a in restored] == [raised["id"]]
    assert restored[0]["severity"] == "critical" and restored[0]["state"] == "active"
    # It can still be acknowledged and cleared after the restart.
    assert requests.post(again.url + "/api/control", headers=AUTH,
                         json={"action": "ack_alert", "target": raised["id"]}).status_code == 200
