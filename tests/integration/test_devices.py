"""The device registry over HTTP against a real server: tokens, key-value telemetry, commands.

The MQTT side (dynamic security, device topics) is in test_device_mqtt.py.
"""
from __future__ import annotations

import time

import requests
import socketio

from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
# The body the ESP32 sketch of the original prototype posts once a second.
ESP32_BODY = {"direction": "forward", "velocity_cm_s": 12.4, "flow_cm3_s": 51.2, "flow_L_min": 3.07,
              "waterRaw": 2870, "pump": "ON", "time_ms": 183442}


def register(server, **spec) -> dict:
    reply = requests.post(server.url + "/api/devices", json=spec, headers=ADMIN, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()


def telemetry(server, token, body, **kwargs):
    return requests.post(f"{server.url}/api/v1/{token}/telemetry", json=body, timeout=10, **kwargs)


def sensor(server, sensor_id):
    reply = requests.get(f"{server.url}/api/sensors/{sensor_id}", timeout=5)
    return reply.json() if reply.status_code == 200 else None


def device(server, device_id):
    return requests.get(f"{server.url}/api/devices/{device_id}", timeout=5).json()


def test_the_esp32_body_lands_as_a_flow_reading_in_litres_per_minute(start_server):
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN)
    created = register(server, name="ESP32 flow meter", kind="esp32", telemetry={
        "flow_L_min": {"sensor_id": "esp-flow-1", "metric": "flow", "unit": "L/min"}})
    reply = telemetry(server, created["token"], ESP32_BODY)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"accepted": 1, "unmapped": 4, "attributes": 2}
    reading = sensor(server, "esp-flow-1")
    assert (reading["value"], reading["metric"], reading["unit"]) == (3.07, "flow", "L/min")
    view = device(server, created["id"])
    assert view["status"] == "online" and view["last_seen"]
    assert view["attributes"] == {"direction": "forward", "pump": "ON"}
    assert view["unmapped_keys"] == ["flow_cm3_s", "time_ms", "velocity_cm_s", "waterRaw"]
    assert set(view["last_keys"]) == set(ESP32_BODY)
    assert "token" not in view and created["token"] not in str(requests.get(server.url + "/api/devices").json())


def test_three_shapes_strings_scale_and_device_time_over_http(start_server):
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN)
    token = register(server, name="Level gauge", kind="gauge", telemetry={
        "lvl_cm": {"sensor_id": "gauge-level", "metric": "level", "unit": "m", "scale": 0.01},
        "p": {"sensor_id": "gauge-pressure", "metric": "pressure", "unit": "bar"}})["token"]
    device_ms = int((time.time() - 60) * 1000)
    assert telemetry(server, token, {"ts": device_ms, "values": {"p": "3.25"}}).json()["accepted"] == 1
    # Stamped with the device's time, a minute ago.
    assert sensor(server, "gauge-pressure")["recent"] == [{"t": stamp(device_ms / 1000), "v": 3.25}]
    assert telemetry(server, token, {"lvl_cm": "250", "p": 2.5}).json()["accepted"] == 2
    assert sensor(server, "gauge-level")["value"] == 2.5             # "250" cm -> 2.5 m
    assert sensor(server, "gauge-pressure")["value"] == 2.5
    batch = [{"ts": int(time.time() * 1000) + 1000, "values": {"p": 4}}, {"lvl_cm": 300}]
    assert telemetry(server, token, batch).json()["accepted"] == 2
    assert sensor(server, "gauge-pressure")["value"] == 4 and sensor(server, "gauge-level")["value"] == 3.0


def test_errors_follow_the_envelope(start_server):
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN, TELEMETRY_MAX_BYTES="1024")
    token = register(server, name="Meter", kind="meter", telemetry={
        "q": {"sensor_id": "meter-q", "metric": "flow"}})["token"]
    assert telemetry(server, "no-such-token", {"q": 1}).status_code == 401
    reply = requests.post(f"{server.url}/api/v1/{token}/telemetry", data=b"q=1", timeout=5)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "bad_request"
    reply = telemetry(server, token, [{"q": 1}, {"ts": "yesterday", "values": {"q": 2}}, {"q": "ON"}])
    assert reply.status_code == 422
    assert reply.json()["error"]["details"] == [
        {"field": "ts", "message": "must be milliseconds since the epoch", "index": 1}]
    reply = telemetry(server, token, {"q": [1]})
    assert reply.status_code == 422 and reply.json()["error"]["details"][0]["field"] == "q"
    reply = telemetry(server, token, {"pad": "x" * 2000})
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "payload_too_large"
    assert sensor(server, "meter-q") is None                        # nothing of the bad bodies landed


def test_a_device_writes_only_its_own_sensors_and_a_spoof_is_refused_and_audited(start_server):
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN)
    a = register(server, id="meter-a", name="A", kind="meter",
                 telemetry={"q": {"sensor_id": "a-flow", "metric": "flow"}})
    b = register(server, id="meter-b", name="B", kind="meter",
                 telemetry={"q": {"sensor_id": "b-flow", "metric": "flow"}})
    assert telemetry(server, b["token"], {"q": 7}).status_code == 200
    as_a = {"Authorization": f"Bearer {a['token']}"}
    for path, body in (("/api/ingest", {"sensor_id": "b-flow", "value": 99}),
                       ("/api/sensors", [{"sensor_id": "a-flow", "value": 1}, {"sensor_id": "b-flow", "value": 99}])):
        reply = requests.post(server.url + path, json=body, headers=as_a, timeout=5)
        assert reply.status_code == 403, reply.text
    assert telemetry(server, a["token"], {"q": 1, "sensor_id": "b-flow"}).status_code == 403
    assert telemetry(server, a["token"], {"q": 1, "b-flow": 99}).status_code == 403
    assert sensor(server, "b-flow")["value"] == 7 and sensor(server, "a-flow") is None
    # Open ingest (no DEVICE_KEYS) cannot write a registered device's sensor either.
    assert requests.post(server.url + "/api/ingest", json={"sensor_id": "b-flow", "value": 5}).status_code == 403
    # Its own sensor, with its own token, on the classic endpoint: fine.
    reply = requests.post(server.url + "/api/ingest", json={"sensor_id": "a-flow", "value": 2}, headers=as_a)
    assert reply.status_code == 201 and sensor(server, "a-flow")["value"] == 2
    audit = requests.get(server.url + "/api/audit/devices", headers=ADMIN, timeout=5).json()["audit"]
    assert [e["device_id"] for e in audit[:5]] == [None, "meter-a", "meter-a", "meter-a", "meter-a"]
    assert all(e["kind"] == "write_refused" and e["sensors"] == ["b-flow"] for e in audit[:5])


def test_registry_administration_needs_an_admin_and_a_rotated_token_stops_at_once(start_server):
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN)
    spec = {"name": "Valve box", "kind": "valve", "telemetry": {"q": {"sensor_id": "vb-flow"}}}
    assert requests.post(server.url + "/api/devices", json=spec, headers=OPERATOR).status_code == 403
    assert requests.post(server.url + "/api/devices", json=spec).status_code == 401
    created = register(server, **spec)
    conflict = requests.post(server.url + "/api/devices", json={**spec, "name": "Other"}, headers=ADMIN)
    assert conflict.status_code == 409                              # vb-flow already has an owner
    old = created["token"]
    assert telemetry(server, old, {"q": 1}).status_code == 200
    rotated = requests.post(f"{server.url}/api/devices/{created['id']}/token", headers=ADMIN).json()
    assert telemetry(server, old, {"q": 2}).status_code == 401
    assert telemetry(server, rotated["token"], {"q": 3}).status_code == 200
    patched = requests.patch(f"{server.url}/api/devices/{created['id']}", headers=ADMIN,
                             json={"telemetry": {"q": {"sensor_id": "vb-flow"}, "t": {"sensor_id": "vb-temp",
                                                                                     "metric": "temperature"}}})
    assert patched.status_code == 200
    assert telemetry(server, rotated["token"], {"t": "21.5"}).json()["accepted"] == 1
    assert requests.delete(f"{server.url}/api/devices/{created['id']}", headers=ADMIN).status_code == 200
    assert telemetry(server, rotated["token"], {"q": 4}).status_code == 401
    assert requests.get(f"{server.url}/api/devices/{created['id']}").status_code == 404


def control(server, target, value):
    reply = requests.post(server.url + "/api/control", headers=OPERATOR, timeout=5,
                          json={"action": "set_valve", "target": target, "value": value})
    assert reply.status_code == 200, reply.text
    return reply.json()["control"]


def commands(server, **query):
    return requests.get(server.url + "/api/commands", params=query, timeout=5).json()["commands"]


def a_valve(server) -> str:
    links = requests.get(server.url + "/api/network").json()["links"]
    return next(link["id"] for link in links if link["kind"] == "valve")


def test_commands_over_http_poll_succeed_with_an_answering_device_and_time_out_with_a_silent_one(start_server):
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN)
    valve = a_valve(server)
    answering = register(server, id="valve-ctl", name="Valve controller", kind="valve_controller",
                         actuators=[valve], command_timeout_s=30)
    live = socketio.Client(reconnection=False)
    pushed: list[tuple[str, dict]] = []
    for event in ("command_update", "control_update"):
        live.on(event, lambda body, event=event: pushed.append((event, body)), namespace="/live")
    live.connect(server.url, namespaces=["/live"], wait_timeout=5)
    issued = control(server, valve, 40)
    queued = wait_for(lambda: commands(server, device_id="valve-ctl"), lambda c: len(c) == 1)[0]
    assert queued["state"] == "queued" and queued["control_id"] == issued["id"]
    # The control's answer says which command it became.
    assert issued["command"] == {"id": queued["id"], "device_id": "valve-ctl", "state": "queued"}
    token = answering["token"]
    polled = requests.get(f"{server.url}/api/v1/{token}/rpc", params={"timeout": 5}, timeout=10).json()
    assert [c["method"] for c in polled["commands"]] == ["set_valve"]
    assert polled["commands"][0]["params"] == {"target": valve, "value": 40.0}
    command_id = polled["commands"][0]["id"]
    for status in ("delivered", "successful"):
        reply = requests.post(f"{server.url}/api/v1/{token}/rpc/{command_id}",
                              json={"status": status, "result": {"opening": 40}}, timeout=5)
        assert reply.status_code == 200 and reply.json()["state"] == status
    done = commands(server, device_id="valve-ctl", state="successful")[0]
    assert [h["state"] for h in done["history"]] == ["queued", "sent", "delivered", "successful"]
    assert all(h["at"] for h in done["history"]) and done["result"] == {"opening": 40}
    assert requests.post(f"{server.url}/api/v1/{token}/rpc/{command_id}",
                         json={"status": "failed"}).status_code == 409
    # Each state change was pushed on /live; the control's own update names its command.
    wait_for(lambda: [b["state"] for e, b in pushed if e == "command_update" and b["id"] == command_id],
             lambda seen: seen == ["queued", "sent", "delivered", "successful"], timeout=5)
    assert [b["command"]["id"] for e, b in pushed if e == "control_update"] == [command_id]
    live.disconnect()

    # A silent device fetches its command and never answers: timeout.
    requests.patch(f"{server.url}/api/devices/valve-ctl", headers=ADMIN, json={"command_timeout_s": 1})
    control(server, valve, 10)
    assert len(requests.get(f"{server.url}/api/v1/{token}/rpc", params={"timeout": 5}).json()["commands"]) == 1
    timed_out = wait_for(lambda: commands(server, device_id="valve-ctl", state="timeout"), bool)[0]
    assert [h["state"] for h in timed_out["history"]] == ["queued", "sent", "timeout"]


def test_a_command_queued_across_a_restart_is_delivered_after_it(start_server, tmp_path):
    instance = str(tmp_path / "kept-instance")
    server = start_server(ADMIN_TOKENS=ADMIN_TOKEN, INSTANCE_DIR=instance)
    valve = a_valve(server)
    token = register(server, id="slow-valve", name="Slow valve", kind="valve_controller",
                     actuators=[valve])["token"]
    control(server, valve, 75)
    assert commands(server, device_id="slow-valve")[0]["state"] == "queued"
    server.stop()
    again = start_server(ADMIN_TOKENS=ADMIN_TOKEN, INSTANCE_DIR=instance, PORT=str(server.port))
    polled = requests.get(f"{again.url}/api/v1/{token}/rpc", params={"timeout": 5}, timeout=10).json()
    assert [c["params"]["value"] for c in polled["commands"]] == [75.0]
    reply = requests.post(f"{again.url}/api/v1/{token}/rpc/{polled['commands'][0]['id']}",
                          json={"status": "successful"}, timeout=5)
    assert reply.json()["state"] == "successful"
    assert [h["state"] for h in reply.json()["history"]] == ["queued", "sent", "successful"]
