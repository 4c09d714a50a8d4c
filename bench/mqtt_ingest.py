"""MQTT ingest: messages/s from the broker into the store, against a bare paho subscriber.

Starts a real Mosquitto on loopback. The ceiling is a bare paho subscriber
(no eventlet, in its own process) counting the same messages at the same QoS.
Ours is the real server (`python run.py`, eventlet) with MQTT_URL set, timed
from the first publish until /api/status counts every message ingested.
Messages are published with `mosquitto_pub -l`, so the publisher is not the
bottleneck. Run: python bench/mqtt_ingest.py [messages]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.server import ServerProcess  # noqa: E402
from testkit.services import MosquittoBroker  # noqa: E402

MESSAGES = 50_000
QOS = 1
BARE_SUBSCRIBER = r"""
import sys, time
import paho.mqtt.client as mqtt
port, total = int(sys.argv[1]), int(sys.argv[2])
count = 0
def on_message(c, u, m):
    global count
    count += 1
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare", clean_session=False)
c.on_message = on_message
c.on_connect = lambda c, u, f, rc, p=None: c.subscribe("water/sensors/#", qos=%d)
c.connect("127.0.0.1", port)
c.loop_start()
print("ready", flush=True)
deadline = time.time() + 300
while count < total and time.time() < deadline:
    time.sleep(0.001)
print(time.time(), count, flush=True)
c.loop_stop()
""" % QOS


def payload_lines() -> bytes:
    return "\n".join(json.dumps({"sensor_id": f"bench-{i % 500}", "value": float(i % 1000) / 10})
                     for i in range(MESSAGES)).encode()


def publish(port: int, lines: bytes) -> float:
    started = time.time()
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", str(QOS),
                    "-t", "water/sensors/bench", "-l"], input=lines, check=True, timeout=300)
    return started


def bare(broker) -> float:
    proc = subprocess.Popen([sys.executable, "-c", BARE_SUBSCRIBER, str(broker.port), str(MESSAGES)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    started = publish(broker.port, payload_lines())
    finished, count = proc.stdout.readline().split()
    proc.wait(timeout=30)
    assert int(count) == MESSAGES, f"bare subscriber got {count}"
    return MESSAGES / (float(finished) - started)


def ours(broker, folder: Path) -> float:
    server = ServerProcess(folder, MQTT_URL=broker.url, MQTT_CLIENT_ID="bhs-bench", LOG_LEVEL="WARNING").start()
    try:
        status = lambda: requests.get(server.url + "/api/status", timeout=5).json()["mqtt"]  # noqa: E731
        deadline = time.time() + 10
        while status()["state"] != "connected" and time.time() < deadline:
            time.sleep(0.1)
        started = publish(broker.port, payload_lines())
        deadline = started + 300
        while status()["messages_in"] < MESSAGES and time.time() < deadline:
            time.sleep(0.02)
        finished = time.time()
        got = status()["messages_in"]
        assert got == MESSAGES, f"server ingested {got}"
        return MESSAGES / (finished - started)
    finally:
        server.stop()


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    broker = MosquittoBroker(folder).start()
    try:
        ceiling = bare(broker)
        ours_rate = ours(broker, folder)
    finally:
        broker.stop()
    print(f"MQTT ingest, {MESSAGES} messages at QoS {QOS}, Mosquitto on loopback, {os.cpu_count()} cores")
    print(f"{'subscriber':<52} {'msg/s':>8}")
    print(f"{'bare paho, no eventlet, counting only (ceiling)':<52} {ceiling:>8.0f}")
    print(f"{'server: paho -> hand-off -> validate, store, history, broadcast':<52} {ours_rate:>8.0f}")
    print(f"ratio: {ours_rate / ceiling:.0%} of the bare subscriber (target >= 60%)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        MESSAGES = int(sys.argv[1])
    main()
