"""The product as a new user starts it: the simulator fills the network, and
its endpoints drive events through the whole pipeline."""
from __future__ import annotations

import time

import pytest
import requests

from tools import devices
from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}



@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from testkit.server import ServerProcess
    env = {"SIMULATOR_SEED": "11", "SIMULATOR_EVENTS_PER_HOUR": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("sim"), **env)
    proc.env.pop("SIMULATOR")          # the default: on, since MQTT_URL is unset
    proc.start()
    yield proc
    proc.stop()


def sensors(server):
    return {s["sensor_id"]: s for s in requests.get(server.url + "/api/sensors", timeout=5).json()["sensors"]}


def test_whole_network_reports_within_seconds_and_values_move(simulated):
    network = requests.get(simulated.url + "/api/network", timeout=5).json()
    registered = {s["id"] for s in network["sensors"]}
    assert len(registered) == 145
    first = wait_for(lambda: sensors(simulated), lambda got: registered <= set(got), timeout=10)
    assert first["Z_SOUTH.flow"]["unit"] == "MLD" and first["Z_SOUTH.flow"]["node_id"] == "Z_SOUTH"
    later = wait_for(lambda: sensors(simulated),
                     lambda got: got["Z_SOUTH.flow"]["value"] != first["Z_SOUTH.flow"]["value"])
    assert later["Z_SOUTH.pressure_1"]["timestamp"] != first["Z_SOUTH.pressure_1"]["timestamp"]
    state = requests.get(simulated.url + "/api/simulation", timeout=5).json()
    assert state["running"] is True and state["seed"] == 11


def test_simulation_endpoints_need_an_operator(simulated):
    body = {"event": "leak", "target": "Z_SOUTH"}
    assert requests.post(simulated.url + "/api/simulation/trigger", json=body).status_code == 401
    bad = requests.post(simulated.url + "/api/simulation/trigger", headers=AUTH,
                        json={"event": "leak", "target": "SRC_CWSS_5"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "target"
    bad = requests.post(simulated.url + "/api/simulation/baseline", headers=AUTH,
                        json={"target": "all", "factor": 7})
    assert bad.status_code == 422


def test_source_outage_shows_in_readings_and_baseline_scales_demand(simulated):
    reply = requests.post(simulated.url + "/api/simulation/trigger", headers=AUTH,
                          json={"event": "source_outage", "target": "SRC_CWSS_4", "magnitude": 1,
                                "duration_s": 120})
    assert reply.status_code == 201 and reply.json()["event"]["target"] == "SRC_CWSS_4"
    wait_for(lambda: sensors(simulated), lambda got: got["SRC_CWSS_4.flow"]["value"] == 0, timeout=60)
    events = requests.get(simulated.url + "/api/simulation").json()["events"]
    assert any(e["event"] == "source_outage" for e in events)

    before = sensors(simulated)["Z_NORTH.flow"]["value"]
    assert requests.post(simulated.url + "/api/simulation/baseline", headers=AUTH,
                         json={"target": "Z_NORTH", "factor": 0.5}).status_code == 200
    wait_for(lambda: sensors(simulated), lambda got: got["Z_NORTH.flow"]["value"] < 0.7 * before)


def test_stop_and_start(simulated):
    assert requests.post(simulated.url + "/api/simulation/stop", headers=AUTH).json()["running"] is False
    count = requests.get(simulated.url + "/api/status").json()["readings"]["ingested"]["total"]
    time.sleep(2.5)
    assert requests.get(simulated.url + "/api/status").json()["readings"]["ingested"]["total"] == count
    assert requests.post(simulated.url + "/api/simulation/start", headers=AUTH).json()["running"] is True
    wait_for(lambda: requests.get(simulated.url + "/api/status").json()["readings"]["ingested"]["total"],
             lambda total: total > count)


def test_device_fleet_tool_reports_sent_and_failed(server, capsys):
    tally = devices.main(["--url", server.url, "--devices", "3", "--rate", "60", "--duration", "1.5",
                          "--batch", "4"])
    assert tally.sent > 0 and tally.failed == 0
    status = requests.get(server.url + "/api/status").json()
    assert status["readings"]["ingested"]["by_source"]["http"] >= tally.sent
    failing = devices.main(["--url", "http://127.0.0.1:9", "--devices", "1", "--rate", "5", "--duration", "0.5"])
    assert failing.sent == 0 and failing.failed > 0
    assert "failed=" in capsys.readouterr().out


def test_leak_posted_by_devices_raises_a_decision_and_an_alert(server):
    """Zone readings with a burst signature, sent as a device would, trip the leak rule."""
    now = time.time()
    history = []
    for k in range(40):   # 200 s of steady readings, 5 s apart, ending 60 s ago
        t = now - 260 + 5 * k
        history += [{"sensor_id": "Z_RR_NAGAR.flow", "value": 150.0 + (k % 3), "timestamp": stamp(t)},
                    {"sensor_id": "Z_RR_NAGAR.pressure_1", "value": 24.0 + (k % 2) * 0.1, "timestamp": stamp(t)}]
    assert requests.post(server.url + "/api/sensors", json=history).status_code == 202
    # A burst lasts: 40 s of readings past the detector's confirmation time.
    burst = [r for k in range(9) for r in (
        {"sensor_id": "Z_RR_NAGAR.flow", "value": 190.0, "timestamp": stamp(now - 40 + 5 * k)},
        {"sensor_id": "Z_RR_NAGAR.pressure_1", "value": 18.5, "timestamp": stamp(now - 40 + 5 * k)})]
    assert requests.post(server.url + "/api/sensors", json=burst).status_code == 202
    decisions = wait_for(lambda: requests.get(server.url + "/api/decisions?limit=100").json()["decisions"],
                         lambda ds: any(d["kind"] == "leak_suspected" for d in ds), timeout=10)
    leak = next(d for d in decisions if d["kind"] == "leak_suspected")
    assert leak["target"] == "Z_RR_NAGAR" and "%" in leak["reason"] and "MLD" in leak["reason"]
    alerts = requests.get(server.url + "/api/alerts").json()["alerts"]
    alert = next(a for a in alerts if a["condition"] == "leak_suspected")
    assert alert["node_id"] == "Z_RR_NAGAR" and alert["state"] == "active"
    # An operator acknowledges it.
    ack = requests.post(server.url + "/api/control", headers=AUTH,
                        json={"action": "ack_alert", "target": alert["id"]})
    assert ack.status_code == 200
    alerts = requests.get(server.url + "/api/alerts").json()["alerts"]
    assert next(a for a in alerts if a["id"] == alert["id"])["state"] == "acknowledged"
