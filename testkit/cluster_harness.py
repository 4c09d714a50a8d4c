"""A cluster on loopback for the tests and bench/cluster.py: N instances, feeders, live clients.

Instances are real `python run.py` processes sharing one Redis, one Mosquitto
and (optionally) one InfluxDB; nginx fronts them. Feeders record exactly which
readings were accepted: a 2xx for HTTP, a PUBACK for MQTT QoS 1.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import requests
import socketio

from testkit.helpers import stamp
from testkit.server import OPERATOR_TOKEN, ServerProcess
from testkit.services import wait_until

# How long an instance may take to answer /api/ready after it answers /api/health.
READY_TIMEOUT_S = 60


def ms(iso: str) -> int:
    """Epoch milliseconds of an ISO timestamp (readings are compared at ms precision)."""
    from datetime import datetime
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class Cluster:
    def __init__(self, folder: Path, redis_url: str, mqtt_url: str | None, n: int = 3,
                 **env: str):
        self.servers: dict[str, ServerProcess] = {}
        for i in range(1, n + 1):
            name = f"bhs-{i}"
            home = folder / name
            home.mkdir(parents=True, exist_ok=True)
            extra = {"MQTT_URL": mqtt_url} if mqtt_url else {}
            self.servers[name] = ServerProcess(
                home, INSTANCE_ID=name, REDIS_URL=redis_url, INSTANCE_DIR=str(home / "instance"),
                LOG_LEVEL="WARNING", INGEST_RATE_LIMIT="1000000 per second", **extra, **env)

    def start(self) -> "Cluster":
        for server in self.servers.values():
            server.start()
        for name in self.servers:
            self.wait_ready(name)
        return self

    def wait_ready(self, name: str) -> None:
        server = self.servers[name]
        wait_until(lambda: requests.get(server.url + "/api/ready", timeout=2).status_code == 200,
                   READY_TIMEOUT_S, f"{name} ready")

    def alive(self) -> dict[str, ServerProcess]:
        return {n: s for n, s in self.servers.items() if s.process and s.process.poll() is None}

    def health(self, name: str) -> dict:
        return requests.get(self.servers[name].url + "/api/health", timeout=5).json()["cluster"]

    def leader(self) -> str | None:
        leaders = {self.health(n)["leader"] for n in self.alive()}
        return leaders.pop() if len(leaders) == 1 else None

    def urls(self) -> list[str]:
        return [s.url for s in self.alive().values()]

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


class HttpFeeder(threading.Thread):
    """Posts batches of readings through one URL; remembers what got a 2xx."""

    def __init__(self, url: str, sensors: list[dict], batch: int = 10, pause_s: float = 0.03,
                 clock=None, per_sensor: int = 60):
        super().__init__(daemon=True)
        # At most this many readings per sensor, so all fit in the store's recent
        # points (120), even if MQTT redelivers some to a restarted instance.
        self.limit = per_sensor * len(sensors)
        self.url = url
        self.sensors = sensors
        self.batch = batch
        self.pause_s = pause_s
        self.clock = clock or Stamps()
        self.accepted: list[tuple[str, int]] = []      # (sensor_id, ms)
        self.failed = 0
        self.latencies: list[float] = []
        self.running = True
        self.session = requests.Session()

    def run(self) -> None:
        cycle = itertools.cycle(self.sensors)
        flip = 0
        sent = 0
        while self.running and sent + self.batch <= self.limit:
            sent += self.batch
            readings = []
            for _ in range(self.batch):
                sensor = next(cycle)
                flip += 1
                readings.append({"sensor_id": sensor["id"], "value": swing(sensor, flip),
                                 "timestamp": stamp(self.clock.next())})
            try:
                began = time.monotonic()
                reply = self.session.post(self.url + "/api/sensors", json=readings, timeout=10)
                self.latencies.append(time.monotonic() - began)
                if 200 <= reply.status_code < 300:
                    self.accepted += [(r["sensor_id"], ms(r["timestamp"])) for r in readings]
                else:
                    self.failed += len(readings)
            except requests.RequestException:
                self.failed += len(readings)
            time.sleep(self.pause_s)

    def stop(self) -> None:
        self.running = False
        self.join(15)


class MqttFeeder(threading.Thread):
    """Publishes one reading per message at QoS 1; remembers what the broker PUBACKed."""

    def __init__(self, port: int, sensors: list[dict], pause_s: float = 0.01, prefix: str = "water",
                 clock=None, per_sensor: int = 60):
        super().__init__(daemon=True)
        self.limit = per_sensor * len(sensors)
        self.sensors = sensors
        self.pause_s = pause_s
        self.prefix = prefix
        self.clock = clock or Stamps()
        self.accepted: list[tuple[str, int]] = []
        self._in_flight: dict[int, tuple[str, int]] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.running = True
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"feeder-{id(self)}")
        self.client.max_inflight_messages_set(100)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None):
        with self._lock:
            reading = self._in_flight.pop(mid, None)
            if reading is None:          # acknowledged before run() noted it
                self._early.add(mid)
                return
        self.accepted.append(reading)

    def run(self) -> None:
        cycle = itertools.cycle(self.sensors)
        flip = 0
        sent = 0
        while self.running and sent < self.limit:
            sent += 1
            sensor = next(cycle)
            flip += 1
            moment = self.clock.next()
            payload = json.dumps({"value": swing(sensor, flip), "timestamp": stamp(moment)})
            reading = (sensor["id"], ms(stamp(moment)))
            # Not under our lock: paho calls on_publish holding its own, and
            # publish() takes that one (the two orders deadlocked).
            info = self.client.publish(f"{self.prefix}/sensors/{sensor['id']}", payload, qos=1)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.accepted.append(reading)
                else:
                    self._in_flight[info.mid] = reading
            time.sleep(self.pause_s)

    def stop(self) -> None:
        self.running = False
        self.join(15)
        deadline = time.monotonic() + 15
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.1)
        self.client.disconnect()
        self.client.loop_stop()


class Stamps:
    """Strictly increasing millisecond timestamps near now, shared by feeders: every
    reading is a distinct point, so 'exactly once' can be counted."""

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> float:
        with self._lock:
            self._last = max(self._last + 1, int(time.time() * 1000))
            return self._last / 1000


def swing(sensor: dict, flip: int) -> float:
    """Alternate between two values a third of the normal range apart: always significant."""
    low, high = sensor["normal"]
    return round(low + (high - low) * (0.35 if flip % 2 else 0.65) + (flip % 7) * 1e-3, 4)


class Viewer:
    """A /live client that records snapshots (with the serving instance) and readings."""

    def __init__(self, url: str, nodes: list[str] | None = None, transports=None):
        self.snapshots: list[str | None] = []
        self.readings: dict[tuple[str, int], float] = {}
        self.nodes = nodes
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5,
                                   reconnection_delay_max=2, randomization_factor=0.2)
        self.sio.on("snapshot", self._snapshot, namespace="/live")
        self.sio.on("sensor_update", self._frame, namespace="/live")
        self.sio.on("minor_update", self._frame, namespace="/live")
        self.sio.on("connect", self._connected, namespace="/live")
        self.sio.connect(url, namespaces=["/live"], transports=transports, wait_timeout=10)

    @property
    def instance(self) -> str | None:
        return self.snapshots[-1] if self.snapshots else None

    def _snapshot(self, data):
        # A viewer that reconnects (its instance died, or came back and took its route
        # again: nginx's hash is consistent) is brought up to date by the snapshot's
        # latest readings, not by the frames it missed meanwhile; both count as seen.
        with self.lock:
            for r in data.get("sensors") or []:
                self.readings[(r["sensor_id"], ms(r["timestamp"]))] = r["value"]
        self.snapshots.append(((data.get("health") or {}).get("cluster") or {}).get("instance_id"))

    def _connected(self):
        if self.nodes:   # rooms are per connection: join again after a reconnect
            threading.Thread(target=self._subscribe, daemon=True).start()

    def _subscribe(self):
        try:
            self.sio.call("subscribe", {"nodes": self.nodes}, namespace="/live", timeout=10)
        except Exception:
            pass

    def _frame(self, data):
        with self.lock:
            for r in data["readings"]:
                self.readings[(r["sensor_id"], ms(r["timestamp"]))] = r["value"]

    def saw(self, sensor_id: str, at_ms: int) -> bool:
        with self.lock:
            return (sensor_id, at_ms) in self.readings

    def close(self) -> None:
        self.sio.disconnect()


def control(url: str, body: dict) -> requests.Response:
    return requests.post(url + "/api/control", json=body, timeout=10,
                         headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
