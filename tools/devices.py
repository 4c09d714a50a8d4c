"""A fleet of pretend devices sending the simulator's readings, for demos and load.

    python -m tools.devices --url http://127.0.0.1:5000 --devices 20 --rate 500 --duration 30
    python -m tools.devices --transport mqtt --mqtt-url mqtt://127.0.0.1:1883 --devices 5

Each device owns a share of the network's sensors and sends their readings
(from a seeded simulation) at its share of `--rate` readings per second, one
reading per request or `--batch` at a time. Every run is bounded by
`--duration`; at the end it reports what was sent and what failed.

With `--admin-token` the devices are real registered devices (tools/fleet.py):
registered through the registry API, sending key-value telemetry with their
own tokens (HTTP, or MQTT logged in as themselves), and `--actuators` more
that answer commands, some slow, failing or silent by the given shares;
`--control-every` issues controls on their targets so commands flow:

    python -m tools.devices --admin-token $ADMIN --devices 4 --actuators 5 --silent-share 0.2 \
        --slow-share 0.2 --control-every 1 --duration 20
    python -m tools.devices --admin-token $ADMIN --transport mqtt --mqtt-url mqtt://127.0.0.1:1883 ...
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests

from app.adapters.network_files import load_network
from app.config import BUNDLED_NETWORK
from app.services.network import Network
from app.services.simulation import NetworkSimulation


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sent: int = 0, failed: int = 0, error: str | None = None) -> None:
        with self.lock:
            self.sent += sent
            self.failed += failed
            if error:
                self.errors[error] += 1


class HttpSender:
    def __init__(self, url: str, api_key: str | None):
        self.session = requests.Session()
        self.url = url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def send(self, readings: list[dict]) -> str | None:
        if len(readings) == 1:
            reply = self.session.post(self.url + "/api/ingest", json=readings[0], headers=self.headers, timeout=10)
        else:
            reply = self.session.post(self.url + "/api/sensors", json=readings, headers=self.headers, timeout=10)
        return None if reply.status_code < 300 else f"HTTP {reply.status_code}"

    def close(self) -> None:
        self.session.close()


class MqttSender:
    def __init__(self, url: str, prefix: str, client_id: str):
        import paho.mqtt.client as mqtt

        parsed = urlparse(url)
        self.prefix = prefix
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        if parsed.scheme == "mqtts":
            self.client.tls_set()
        self.client.will_set(f"{prefix}/status/{client_id}", "offline", qos=1, retain=True)
        self.client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.client.loop_start()
        self.client.publish(f"{prefix}/status/{client_id}", "online", qos=1, retain=True)

    def send(self, readings: list[dict]) -> str | None:
        topic = f"{self.prefix}/sensors/{readings[0]['sensor_id']}"
        payload = json.dumps(readings[0] if len(readings) == 1 else readings)
        info = self.client.publish(topic, payload, qos=1)
        return None if info.rc == 0 else f"MQTT rc {info.rc}"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_device(index: int, sensors: list[str], sender, args, tally: Tally, network: Network,
               deadline: float) -> None:
    simulation = NetworkSimulation(network, seed=args.seed + index, start=time.time())
    per_second = args.rate / args.devices
    pending: list[dict] = []
    sent_at = time.monotonic()
    mine = set(sensors)
    try:
        while time.monotonic() < deadline:
            if not pending:
                pending = [r for r in simulation.read_all(time.time()) if r["sensor_id"] in mine]
            chunk, pending = pending[:args.batch], pending[args.batch:]
            if not chunk:
                continue
            try:
                error = sender.send(chunk)
            except Exception as exc:  # a fleet tool reports failures, it doesn't stop on them
                error = type(exc).__name__
            tally.add(failed=len(chunk), error=error) if error else tally.add(sent=len(chunk))
            sent_at += len(chunk) / per_second
            pause = sent_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    finally:
        sender.close()


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--transport", choices=["http", "mqtt"], default="http")
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--prefix", default="water")
    parser.add_argument("--api-key")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="readings per second, all devices together")
    parser.add_argument("--batch", type=int, default=1, help="readings per request or message")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (bounded)")
    parser.add_argument("--network", default=str(BUNDLED_NETWORK))
    parser.add_argument("--seed", type=int, default=0)
    registered = parser.add_argument_group("registered devices (tools/fleet.py)")
    registered.add_argument("--admin-token", help="register the devices with this admin token")
    registered.add_argument("--actuators", type=int, default=0, help="devices driving valves and pumps")
    registered.add_argument("--silent-share", type=float, default=0.0, help="actuators that never answer")
    registered.add_argument("--slow-share", type=float, default=0.0, help="actuators that answer late")
    registered.add_argument("--fail-share", type=float, default=0.0, help="actuators that report failed")
    registered.add_argument("--slow-s", type=float, default=2.0, help="how late a slow actuator answers")
    registered.add_argument("--command-timeout", type=float, default=5.0, help="command_timeout_s of actuators")
    registered.add_argument("--control-every", type=float, default=0.0,
                            help="issue a control on an actuator's target every this many s (0: none)")
    registered.add_argument("--keep", action="store_true", help="leave the devices registered at the end")
    args = parser.parse_args(argv)
    network = load_network(args.network)
    if args.admin_token:
        from tools.fleet import run_fleet
        return run_fleet(args, network)
    sensor_ids = sorted(network.sensors)
    tally = Tally()
    deadline = time.monotonic() + args.duration
    threads = []
    for index in range(args.devices):
        sensors = sensor_ids[index::args.devices]
        if not sensors:
            continue
        sender = (HttpSender(args.url, args.api_key) if args.transport == "http"
                  else MqttSender(args.mqtt_url, args.prefix, f"device-{args.seed}-{index}"))
        thread = threading.Thread(target=run_device, daemon=True,
                                  args=(index, sensors, sender, args, tally, network, deadline))
        thread.start()
        threads.append(thread)
    started = time.monotonic()
    for thread in threads:
        thread.join(timeout=args.duration + 15)
    elapsed = time.monotonic() - started
    print(f"devices={len(threads)} transport={args.transport} sent={tally.sent} failed={tally.failed} "
          f"rate={tally.sent / elapsed:.0f}/s elapsed={elapsed:.1f}s")
    for error, count in tally.errors.most_common():
        print(f"  {count} x {error}")
    return tally


if __name__ == "__main__":
    main()
