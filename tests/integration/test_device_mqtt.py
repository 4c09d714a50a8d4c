"""Registered devices over MQTT: a real server driving a real Mosquitto's dynamic-security plugin.

Devices log in with username = device id and password = token; the broker
authenticates them against what the server provisioned over $CONTROL.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime

import paho.mqtt.client as mqtt
import requests

from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN
from tests.integration.test_devices import ADMIN, ADMIN_TOKEN, ESP32_BODY, a_valve, commands, sensor

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


class FieldDevice:
    """A paho client logged in as a registered device; `answer` decides how it treats commands."""

    def __init__(self, broker, device_id, token, answer=None):
        self.device_id = device_id
        self.connects: list[str] = []
        self.disconnected = threading.Event()
        self.requests: list[dict] = []
        self.answer = answer
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{device_id}-{id(self)}")
        self.client.username_pw_set(device_id, token)
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connects.append(str(rc))
        self.client.on_disconnect = lambda c, u, f, rc, p=None: self.disconnected.set()
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.reconnect_delay_set(30, 60)     # no quick retry: a refusal stays visible
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_for(lambda: self.connects, bool, timeout=10, every=0.05)

    @property
    def accepted(self) -> bool:
        return self.connects[0] == "Success"

    def _on_message(self, client, userdata, message):
        body = json.loads(message.payload)
        self.requests.append(body)
        for status in (self.answer(body) if self.answer else []):
            client.publish(f"v1/devices/{self.device_id}/rpc/response/{body['id']}", json.dumps(status), qos=1)

    def listen(self):
        self.client.subscribe(f"v1/devices/{self.device_id}/rpc/request/+", qos=1)
        assert self.subscribed.wait(5)

    def publish(self, topic, body):
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)

    def telemetry(self, body):
        self.publish(f"v1/devices/{self.device_id}/telemetry", body)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def dynsec_server(start_server, broker, name, **env):
    server = start_server(MQTT_URL=broker.url, MQTT_DYNSEC="on", MQTT_CLIENT_ID=f"bhs-{name}",
                          ADMIN_TOKENS=ADMIN_TOKEN, **env)
    wait_for(lambda: requests.get(server.url + "/api/status").json()["mqtt"],
             lambda s: s["state"] == "connected" and s["dynsec"]["ready"])
    return server


def provision(server, **spec) -> dict:
    reply = requests.post(server.url + "/api/devices", json=spec, headers=ADMIN, timeout=15)
    assert reply.status_code == 201 and reply.json()["mqtt"] == "provisioned", reply.text
    return reply.json()


def test_telemetry_shapes_over_mqtt_and_only_own_topics(start_server, dynsec_broker):
    server = dynsec_server(start_server, dynsec_broker, "shapes")
    esp = provision(server, id="esp-mq", name="ESP32", kind="esp32", telemetry={
        "flow_L_min": {"sensor_id": "esp-mq-flow", "metric": "flow", "unit": "L/min"},
        "p_kpa": {"sensor_id": "esp-mq-pressure", "metric": "pressure", "unit": "bar", "scale": 0.01}})
    other = provision(server, id="other-mq", name="Other", kind="meter",
                      telemetry={"q": {"sensor_id": "other-mq-flow", "metric": "flow"}})
    wrong = FieldDevice(dynsec_broker, "esp-mq", "not-the-token")
    assert not wrong.accepted, wrong.connects                       # refused at connect
    wrong.close()
    device = FieldDevice(dynsec_broker, "esp-mq", esp["token"])
    neighbour = FieldDevice(dynsec_broker, "other-mq", other["token"])
    try:
        assert device.accepted and neighbour.accepted
        neighbour.telemetry({"q": 5})
        wait_for(lambda: sensor(server, "other-mq-flow"), lambda r: r and r["value"] == 5)
        device.telemetry(ESP32_BODY)
        reading = wait_for(lambda: sensor(server, "esp-mq-flow"), bool)
        assert (reading["value"], reading["unit"]) == (3.07, "L/min")
        received_s = datetime.fromisoformat(reading["timestamp"].replace("Z", "+00:00")).timestamp()
        device_ms = int(received_s * 1000) - 30_000               # the device's own clock
        device.telemetry({"ts": device_ms, "values": {"p_kpa": "250"}})
        wait_for(lambda: sensor(server, "esp-mq-pressure"),
                 lambda r: r and r["recent"] == [{"t": stamp(device_ms / 1000), "v": 2.5}])
        device.telemetry([{"flow_L_min": 4.5}, {"p_kpa": 300}])
        wait_for(lambda: (sensor(server, "esp-mq-flow"), sensor(server, "esp-mq-pressure")),
                 lambda rs: rs[0]["value"] == 4.5 and rs[1]["value"] == 3.0)
        view = requests.get(server.url + "/api/devices/esp-mq").json()
        assert view["attributes"]["pump"] == "ON" and "waterRaw" in view["unmapped_keys"]

        # Spoofing: another device's telemetry topic (the broker's ACL drops it), and a
        # reading of the neighbour's sensor on our own water/ topic (the server refuses it).
        device.telemetry({"q": 99})
        device.publish("v1/devices/other-mq/telemetry", {"q": 99})
        device.publish("water/sensors/esp-mq-flow", {"sensor_id": "other-mq-flow", "value": 99})
        device.publish("water/sensors/esp-mq-flow", {"value": 6.5})          # its own: fine
        wait_for(lambda: sensor(server, "esp-mq-flow"), lambda r: r["value"] == 6.5)
        assert sensor(server, "other-mq-flow")["value"] == 5
        audit = requests.get(server.url + "/api/audit/devices", headers=ADMIN).json()["audit"]
        assert audit[0]["channel"] == "mqtt sensors topic" and audit[0]["sensors"] == ["other-mq-flow"]
    finally:
        device.close()
        neighbour.close()


def test_a_rotated_or_deleted_token_is_cut_off_at_once(start_server, dynsec_broker):
    server = dynsec_server(start_server, dynsec_broker, "rotation")
    created = provision(server, id="rot-mq", name="Rotating", kind="meter",
                        telemetry={"q": {"sensor_id": "rot-mq-flow", "metric": "flow"}})
    device = FieldDevice(dynsec_broker, "rot-mq", created["token"])
    assert device.accepted
    rotated = requests.post(server.url + "/api/devices/rot-mq/token", headers=ADMIN, timeout=15).json()
    assert rotated["mqtt"] == "provisioned"
    assert device.disconnected.wait(5)                  # the old session is closed by the broker
    device.close()
    old = FieldDevice(dynsec_broker, "rot-mq", created["token"])
    assert not old.accepted
    old.close()
    new = FieldDevice(dynsec_broker, "rot-mq", rotated["token"])
    assert new.accepted
    new.telemetry({"q": 1.5})
    wait_for(lambda: sensor(server, "rot-mq-flow"), lambda r: r and r["value"] == 1.5)
    assert requests.delete(server.url + "/api/devices/rot-mq", headers=ADMIN, timeout=15).status_code == 200
    assert new.disconnected.wait(5)
    new.close()
    gone = FieldDevice(dynsec_broker, "rot-mq", rotated["token"])
    assert not gone.accepted
    gone.close()


def test_commands_over_mqtt_succeed_with_an_answering_device_and_time_out_with_a_silent_one(
        start_server, dynsec_broker):
    server = dynsec_server(start_server, dynsec_broker, "commands")
    valve = a_valve(server)
    pumps = [link["id"] for link in requests.get(server.url + "/api/network").json()["links"]
             if link["kind"] == "pump"]
    answering = provision(server, id="valve-mq", name="Valve", kind="valve_controller", actuators=[valve])
    silent = provision(server, id="pump-mq", name="Pump", kind="pump_controller", actuators=[pumps[0]],
                       command_timeout_s=1)
    good = FieldDevice(dynsec_broker, "valve-mq", answering["token"],
                       answer=lambda c: [{"status": "delivered"}, {"status": "successful", "result": "ok"}])
    quiet = FieldDevice(dynsec_broker, "pump-mq", silent["token"])
    try:
        good.listen()
        quiet.listen()
        wait_for(lambda: requests.get(server.url + "/api/health").json()["services"]["mqtt"], lambda s: s == "ok")
        became = {}
        for action, target, value in (("set_valve", valve, 30), ("set_pump", pumps[0], "off")):
            reply = requests.post(server.url + "/api/control", headers=OPERATOR, timeout=5,
                                  json={"action": action, "target": target, "value": value})
            assert reply.status_code == 200, reply.text
            became[target] = reply.json()["control"]["command"]
        assert became[valve]["device_id"] == "valve-mq" and became[valve]["state"] == "sent"
        done = wait_for(lambda: commands(server, device_id="valve-mq"),
                        lambda c: c and c[0]["state"] == "successful")[0]
        assert [h["state"] for h in done["history"]] == ["queued", "sent", "delivered", "successful"]
        assert done["id"] == became[valve]["id"]
        assert good.requests[0]["method"] == "set_valve" and good.requests[0]["params"]["value"] == 30
        timed_out = wait_for(lambda: commands(server, device_id="pump-mq"),
                             lambda c: c and c[0]["state"] == "timeout")[0]
        assert [h["state"] for h in timed_out["history"]] == ["queued", "sent", "timeout"]
        assert quiet.requests and quiet.requests[0]["id"] == timed_out["id"]   # it got it, said nothing
    finally:
        good.close()
        quiet.close()


def test_a_command_sent_over_mqtt_across_a_server_restart_is_sent_again_and_delivered(
        start_server, dynsec_broker, tmp_path):
    instance = str(tmp_path / "kept-instance")
    server = dynsec_server(start_server, dynsec_broker, "restart", INSTANCE_DIR=instance)
    valve = a_valve(server)
    token = provision(server, id="late-valve", name="Late valve", kind="valve_controller",
                      actuators=[valve])["token"]
    # The device is not connected: the command is handed to the broker and goes nowhere.
    reply = requests.post(server.url + "/api/control", headers=OPERATOR, timeout=5,
                          json={"action": "set_valve", "target": valve, "value": 55})
    command = reply.json()["control"]["command"]
    assert command["state"] == "sent"
    server.stop()
    device = FieldDevice(dynsec_broker, "late-valve", token,
                         answer=lambda c: [{"status": "delivered"}, {"status": "successful"}])
    try:
        device.listen()                    # back, while the server is down
        again = dynsec_server(start_server, dynsec_broker, "restart", INSTANCE_DIR=instance)
        done = wait_for(lambda: commands(again, device_id="late-valve"),
                        lambda c: c and c[0]["state"] == "successful")[0]
        assert done["id"] == command["id"] and done["attempts"] == 2
        assert [h["state"] for h in done["history"]] == ["queued", "sent", "delivered", "successful"]
        assert [r["id"] for r in device.requests] == [command["id"]]
        assert device.requests[0]["params"] == {"target": valve, "value": 55.0}

        # Its presence says offline (its last will): a command waits queued, and goes
        # out when the device says it is back online.
        device.client.publish("water/status/late-valve", "offline", qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: requests.get(again.url + "/api/status").json()["mqtt"]["devices"],
                 lambda d: d.get("late-valve", {}).get("state") == "offline")
        reply = requests.post(again.url + "/api/control", headers=OPERATOR, timeout=5,
                              json={"action": "set_valve", "target": valve, "value": 20})
        held = reply.json()["control"]["command"]
        assert held["state"] == "queued" and len(device.requests) == 1
        device.client.publish("water/status/late-valve", "online", qos=1, retain=True).wait_for_publish(5)
        done = wait_for(lambda: commands(again, device_id="late-valve"),
                        lambda c: c[0]["id"] == held["id"] and c[0]["state"] == "successful")[0]
        assert [h["state"] for h in done["history"]] == ["queued", "sent", "delivered", "successful"]
    finally:
        device.close()
