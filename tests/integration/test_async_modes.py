"""The same server on each async mode: eventlet (the default), gevent and threading.

The rest of the suite runs on the default; this module repeats one path per
real adapter on every mode, so code that is correct only under eventlet's
cooperative switching fails here under real threads (threading) or a
different hub (gevent). One server per mode, with MQTT and InfluxDB on, serves
all the module's tests (about 20 s a mode): HTTP ingest, /live delivery
(leading edge, bursts, concurrent senders), MQTT in and commands out,
controls over HTTP and over the /control namespace, InfluxDB history and a
graceful stop. The whole suite runs on any mode
with `ASYNC_MODE=gevent python -m pytest`.
"""
from __future__ import annotations

import json
import signal
import threading
import time

import paho.mqtt.client as mqtt
import pytest
import requests

from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN, ServerProcess
from tests.live_client import LiveClient

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
MODES = ["eventlet", "gevent", "threading"]
# Senders of the concurrent-ingest test, and readings each posts.
SENDERS, READINGS_EACH = 8, 40


@pytest.fixture(scope="module", params=MODES)
def mode_server(request, tmp_path_factory, influx, broker):
    mode = request.param
    db = f"modes_{mode}"
    influx.query("", f'DROP DATABASE "{db}"')
    influx.query("", f'CREATE DATABASE "{db}"')
    server = ServerProcess(tmp_path_factory.mktemp(f"server-{mode}"), ASYNC_MODE=mode,
                           INFLUXDB_URL=influx.bridge.url, INFLUXDB_TOKEN="t", INFLUXDB_ORG="bhs",
                           INFLUXDB_BUCKET=db, MQTT_URL=broker.url,
                           MQTT_CLIENT_ID=f"bhs-modes-{mode}").start()
    server.mode, server.db = mode, db
    wait_for(lambda: requests.get(server.url + "/api/status", timeout=5).json()["mqtt"],
             lambda s: s["state"] == "connected")
    yield server
    server.stop()


@pytest.fixture
def live(mode_server):
    client = LiveClient(mode_server.url)
    client.wait_for(lambda ev: client.of("snapshot"))
    yield client
    client.close()


def ingested(server) -> int:
    return requests.get(server.url + "/api/status", timeout=5).json()["readings"]["ingested"]["total"]


def test_the_server_runs_the_mode_it_was_given(mode_server):
    assert f"async mode {mode_server.mode}" in mode_server.log()


def test_lone_readings_go_out_at_once_and_bursts_coalesce(mode_server, live):
    prefix = f"{mode_server.mode}-lead"
    for i in range(3):
        assert requests.post(mode_server.url + "/api/ingest", timeout=10,
                             json={"sensor_id": prefix, "value": float(i)}).status_code == 201
        live.wait_for(lambda ev: any(r["sensor_id"] == prefix and r["value"] == i for r in live.readings()))
        time.sleep(0.2)
    assert len([f for f in live.of("sensor_update") if any(r["sensor_id"] == prefix for r in f["readings"])]) == 3
    burst = [{"sensor_id": f"{mode_server.mode}-burst-{i}", "value": float(i)} for i in range(200)]
    assert requests.post(mode_server.url + "/api/sensors", json=burst, timeout=10).json() == {"accepted": 200}
    live.wait_for(lambda ev: len({r["sensor_id"] for r in live.readings()
                                  if r["sensor_id"].startswith(f"{mode_server.mode}-burst-")}) == 200)


def test_concurrent_senders_lose_no_reading_and_no_count(mode_server, live):
    before = ingested(mode_server)
    failures: list[int] = []

    def send(t):
        session = requests.Session()
        for k in range(READINGS_EACH):
            reply = session.post(mode_server.url + "/api/ingest", timeout=10,
                                 json={"sensor_id": f"{mode_server.mode}-c{t}", "value": float(k)})
            if reply.status_code != 201:
                failures.append(reply.status_code)

    senders = [threading.Thread(target=send, args=(t,)) for t in range(SENDERS)]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    assert not failures
    assert wait_for(lambda: ingested(mode_server) - before, lambda n: n >= SENDERS * READINGS_EACH) \
        == SENDERS * READINGS_EACH
    last = float(READINGS_EACH - 1)
    for t in range(SENDERS):
        sid = f"{mode_server.mode}-c{t}"
        assert requests.get(f"{mode_server.url}/api/latest/{sid}", timeout=5).json()["value"] == last
    # Every sender's last value reached the live client (none lost between frames).
    live.wait_for(lambda ev: all(any(r["sensor_id"] == f"{mode_server.mode}-c{t}" and r["value"] == last
                                     for r in live.readings()) for t in range(SENDERS)))


def test_previews_solved_off_the_loop_answer_together_and_change_nothing(mode_server):
    """A control's preview solves on an OS thread where the mode has one (eventlet's tpool,
    gevent's threadpool), one at a time: concurrent previews and reads all answer, alike."""
    url, body = mode_server.url, {"action": "isolate", "target": "SRC_CWSS_4"}
    answers, failures = [], []

    def preview():
        for _ in range(3):
            reply = requests.post(url + "/api/control/preview", json=body, headers=AUTH, timeout=60)
            (answers if reply.status_code == 200 else failures).append(reply.json())

    def read():
        for _ in range(10):
            reply = requests.get(url + "/api/health", timeout=30)
            if reply.status_code != 200:
                failures.append(reply.text)

    threads = [threading.Thread(target=preview) for _ in range(3)] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(answers) == 9
    assert all(a["preview"]["sentence"].startswith("Isolating Cauvery WSS Stage IV cuts ") for a in answers)
    controls = requests.get(url + "/api/controls", headers=AUTH, timeout=10).json()["controls"]
    assert not any(c["action"] == "isolate" and c["target"] == "SRC_CWSS_4" for c in controls)


def test_mqtt_in_and_commands_out(mode_server, live, broker):
    received = []
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{mode_server.mode}")
    device.on_message = lambda c, u, m: received.append((m.topic, json.loads(m.payload)))
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    try:
        device.subscribe("water/control/V_CJF_WEST", qos=1)
        sid = f"{mode_server.mode}-mq"
        device.publish(f"water/sensors/{sid}", json.dumps({"value": 3.5}), qos=1).wait_for_publish(5)
        live.wait_for(lambda ev: any(r["sensor_id"] == sid and r["value"] == 3.5 for r in live.readings()))
        time.sleep(0.2)   # the subscription is in place before the command goes out
        reply = requests.post(mode_server.url + "/api/control", headers=AUTH, timeout=10,
                              json={"action": "set_valve", "target": "V_CJF_WEST", "value": 35})
        assert reply.status_code == 200
        topic, command = wait_for(lambda: received, lambda got: got)[-1]
        assert topic == "water/control/V_CJF_WEST" and command["value"] == 35
    finally:
        device.disconnect()
        device.loop_stop()


def test_operator_controls_over_socketio_reach_live_viewers(mode_server, live):
    """The /control namespace on this mode: answered, applied, broadcast on /live; bad input gets the envelope."""
    operator = LiveClient(mode_server.url, namespace="/control", auth={"token": OPERATOR_TOKEN})
    try:
        reply = operator.call("control", {"action": "set_valve", "target": "V_CJF_CENTRAL", "value": 55,
                                          "reason": f"{mode_server.mode} over /control"})
        assert reply["ok"] is True and reply["control"]["target"] == "V_CJF_CENTRAL"
        live.wait_for(lambda ev: any(name == "control_update" and data["target"] == "V_CJF_CENTRAL"
                                     and data["value"] == 55 for name, data in ev))
        refused = operator.call("control", {"action": "set_valve", "target": "V_CJF_CENTRAL", "value": 400})
        assert refused["error"]["code"] == "validation_error"
        assert [d["field"] for d in refused["error"]["details"]] == ["value"]
    finally:
        operator.close()


def test_history_lands_in_influxdb_and_a_stop_flushes_it(mode_server, influx):
    base = time.time() - 60
    readings = [{"sensor_id": f"{mode_server.mode}-hist", "value": float(i), "timestamp": stamp(base + i)}
                for i in range(30)]
    assert requests.post(mode_server.url + "/api/sensors", json=readings, timeout=10).status_code == 202
    wait_for(lambda: influx.count(mode_server.db, where=f"WHERE sensor_id = '{mode_server.mode}-hist'"),
             lambda n: n == 30)
    raw = requests.get(f"{mode_server.url}/api/history/{mode_server.mode}-hist", params={"start": "-5m"},
                       timeout=10).json()
    assert [p["v"] for p in raw["points"]] == [r["value"] for r in readings]
    # Last test of the module: a graceful stop writes what is still buffered.
    late = [{"sensor_id": f"{mode_server.mode}-late", "value": 1.0}]
    requests.post(mode_server.url + "/api/sensors", json=late, timeout=10)
    assert mode_server.stop(signal.SIGTERM) == 0
    assert influx.count(mode_server.db, where=f"WHERE sensor_id = '{mode_server.mode}-late'") == 1
