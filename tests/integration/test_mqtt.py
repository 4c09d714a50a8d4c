"""MQTT against a real Mosquitto: readings in, commands out, presence, restarts."""
from __future__ import annotations

import json
import subprocess
import time

import paho.mqtt.client as mqtt
import requests

from testkit.helpers import wait_for
from testkit.server import OPERATOR_TOKEN
from tests.live_client import LiveClient

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}



class Device:
    """A paho client standing in for a field device."""

    def __init__(self, broker, client_id, will=None):
        self.received: list[tuple[str, dict, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = lambda c, u, m: self.received.append(
            (m.topic, json.loads(m.payload), m.retain))
        if will:
            self.client.will_set(*will, qos=1, retain=True)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(self, topic, payload, qos=1):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, data, qos=qos).wait_for_publish(5)

    def subscribe(self, topic):
        self.client.subscribe(topic, qos=1)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_env(broker, client_id):
    return {"MQTT_URL": broker.url, "MQTT_CLIENT_ID": client_id}


def latest(server, sensor_id):
    reply = requests.get(f"{server.url}/api/latest/{sensor_id}", timeout=5)
    return reply.json() if reply.status_code == 200 else None


def status(server):
    return requests.get(server.url + "/api/status", timeout=5).json()["mqtt"]


def test_readings_over_mqtt_reach_the_store_and_live_clients(start_server, broker):
    server = start_server(**mqtt_env(broker, "bhs-test-readings"))
    wait_for(lambda: status(server), lambda s: s["state"] == "connected")
    assert requests.get(server.url + "/api/health").json()["services"]["mqtt"] == "ok"
    client = LiveClient(server.url)
    device = Device(broker, "dev-1")
    try:
        device.publish("water/sensors/mq-1", {"value": 12.5, "unit": "m"})      # id from the topic
        wait_for(lambda: latest(server, "mq-1"), lambda r: r and r["value"] == 12.5)
        client.wait_for(lambda ev: any(r["sensor_id"] == "mq-1" for r in client.readings()))
        device.publish("water/sensors/ignored", [{"sensor_id": "mq-2", "value": 1},
                                                 {"sensorId": "mq-3", "value": 2}])
        wait_for(lambda: latest(server, "mq-3"), lambda r: r and r["value"] == 2)
        assert latest(server, "mq-2")["value"] == 1
    finally:
        device.close()
        client.close()


def test_malformed_payloads_are_counted_and_good_ones_still_land(start_server, broker):
    server = start_server(**mqtt_env(broker, "bhs-test-malformed"))
    wait_for(lambda: status(server), lambda s: s["state"] == "connected")
    device = Device(broker, "dev-2")
    try:
        bad = [b"not json", b'{"value": "high"}', b'{"value": NaN}', b"[1, 2]", b'{"value": 1}' * 1,
               b"\xff\xfe", b'{"sensor_id": "bad id!", "value": 3}']
        for i in range(20):
            device.publish(f"water/sensors/good-{i}", {"value": float(i)})
            device.publish("water/sensors/mal-1", bad[i % len(bad)])
        device.publish("water/elsewhere/x", {"value": 1})            # not subscribed: never seen
        wait_for(lambda: latest(server, "good-19"), lambda r: r is not None)
        assert all(latest(server, f"good-{i}")["value"] == float(i) for i in range(20))
        # Of the 20 malformed, the valid `{"value": 1}` ones (3) landed as mal-1.
        rejected = wait_for(lambda: status(server)["rejected"], lambda n: n >= 17)
        assert rejected == 17
        assert latest(server, "mal-1")["value"] == 1
        health = requests.get(server.url + "/api/status").json()
        assert health["readings"]["rejected"]["by_source"]["mqtt"] >= 17
    finally:
        device.close()


def test_controls_reach_devices_now_and_later_retained(start_server, broker):
    server = start_server(**mqtt_env(broker, "bhs-test-commands"))
    wait_for(lambda: status(server), lambda s: s["state"] == "connected")
    valve = Device(broker, "valve-now")
    valve.subscribe("water/control/V_CJF_WEST")
    time.sleep(0.3)
    try:
        reply = requests.post(server.url + "/api/control", headers=AUTH,
                              json={"action": "set_valve", "target": "V_CJF_WEST", "value": 35})
        assert reply.status_code == 200
        wait_for(lambda: valve.received, lambda got: got)
        topic, command, _ = valve.received[0]
        assert command["action"] == "set_valve" and command["value"] == 35.0
        late = Device(broker, "valve-later")
        late.subscribe("water/control/V_CJF_WEST")
        wait_for(lambda: late.received, lambda got: got)
        assert late.received[0][1]["value"] == 35.0 and late.received[0][2] is True   # retained
        late.close()
    finally:
        valve.close()


def test_readings_published_while_the_server_is_down_all_arrive(start_server, broker):
    env = mqtt_env(broker, "bhs-test-persistent")
    server = start_server(**env)
    wait_for(lambda: status(server), lambda s: s["state"] == "connected")
    server.stop()
    # 500 readings at QoS 1 with mosquitto_pub, while nobody is subscribed.
    lines = "\n".join(json.dumps({"sensor_id": f"down-{i % 50}", "value": float(i)}) for i in range(500))
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                    "-t", "water/sensors/down", "-l"], input=lines.encode(), check=True, timeout=30)
    restarted = start_server(**env)
    wait_for(lambda: status(restarted)["messages_in"], lambda n: n >= 500, timeout=30)
    assert status(restarted)["messages_in"] == 500
    assert latest(restarted, "down-49")["value"] == 499.0


def test_server_reconnects_after_a_broker_restart(start_server, broker):
    server = start_server(**mqtt_env(broker, "bhs-test-reconnect"))
    wait_for(lambda: status(server), lambda s: s["state"] == "connected")
    broker.stop()
    wait_for(lambda: status(server), lambda s: s["state"] != "connected")
    health = requests.get(server.url + "/api/health").json()
    assert health["services"]["mqtt"] == "down" and health["status"] == "degraded"
    broker.start()
    wait_for(lambda: status(server), lambda s: s["state"] == "connected", timeout=45)
    device = Device(broker, "dev-3")
    try:
        device.publish("water/sensors/after-restart", {"value": 7.0})
        wait_for(lambda: latest(server, "after-restart"), lambda r: r and r["value"] == 7.0)
    finally:
        device.close()


def test_device_presence_and_unexpected_offline_alert(start_server, broker):
    server = start_server(**mqtt_env(broker, "bhs-test-presence"))
    wait_for(lambda: status(server), lambda s: s["state"] == "connected")
    device = Device(broker, "Z_SOUTH", will=("water/status/Z_SOUTH", "offline"))
    device.client.publish("water/status/Z_SOUTH", "online", qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: status(server)["devices"], lambda d: d.get("Z_SOUTH", {}).get("state") == "online")
    network = requests.get(server.url + "/api/network").json()
    assert next(s for s in network["sensors"] if s["id"] == "Z_SOUTH.flow")["device_state"] == "online"
    # Drop the connection without a DISCONNECT: the broker publishes the last will.
    device.client.socket().close()
    device.client.loop_stop()
    alerts = wait_for(lambda: requests.get(server.url + "/api/alerts").json()["alerts"],
                      lambda a: any(x["condition"] == "device_offline" for x in a), timeout=60)
    alert = next(a for a in alerts if a["condition"] == "device_offline")
    assert alert["device_id"] == "Z_SOUTH" and alert["severity"] == "warning"


def test_bad_credentials_give_up_loudly(start_server, tmp_path):
    from testkit.services import MosquittoBroker
    locked = MosquittoBroker(tmp_path)
    locked.config.write_text(locked.config.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    locked.start()
    try:
        server = start_server(MQTT_URL=f"mqtt://intruder:guess@127.0.0.1:{locked.port}",
                              MQTT_CLIENT_ID="bhs-test-locked")
        state = wait_for(lambda: status(server), lambda s: s["state"] == "gave_up")
        assert "refused" in state["last_error"]
        assert "giving up" in server.log() and "guess" not in server.log()
        assert requests.get(server.url + "/api/health").json()["services"]["mqtt"] == "down"
    finally:
        locked.stop()
