"""Registered pretend devices: what tools/devices.py runs with `--admin-token`.

Each device is registered through the registry API (`POST /api/devices`) and
then behaves as field firmware does: it sends key-value telemetry with its
own token (HTTP `POST /api/v1/<token>/telemetry`, or MQTT logged in as
username = device id, password = token, on `v1/devices/<id>/telemetry`),
and actuator devices answer the commands the server sends them:

    answering  {"status": "delivered"}, then {"status": "successful", "result": ...}
    slow       the same, the outcome SLOW_S later
    failing    delivered, then {"status": "failed", "result": {"error": ...}}
    silent     takes the command and never says a word (the server times it out)

Which actuator device plays which part follows the configured shares, in
that order: silent ones first, then slow, then failing, the rest answering.
Sensor devices own a share of the network's sensors; flows are sent in L/s
(what field meters report) and mapped with a scale to the network's MLD.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlparse

import requests

logger = logging.getLogger(__name__)

BEHAVIOURS = ("silent", "slow", "failing", "answering")
# 1 MLD (megalitre a day) in L/s: field flow meters report L/s.
LITRES_PER_S_PER_MLD = 1e6 / 86_400
# Longest HTTP long-poll a device makes for commands (s): also how long the
# fleet may wait for its pollers at the end.
POLL_S = 2.0
# Firmware version the pretend devices report as an attribute.
FIRMWARE = "bhs-fleet-1"
# The server's command states that are final.
FINAL = ("successful", "failed", "timeout", "expired")


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def assign_behaviours(count: int, silent: float, slow: float, failing: float) -> list[str]:
    """The part each of `count` actuator devices plays, by the shares (rounded, in order)."""
    parts: list[str] = []
    for name, share in (("silent", silent), ("slow", slow), ("failing", failing)):
        parts += [name] * min(count - len(parts), int(share * count + 0.5))
    return parts + ["answering"] * (count - len(parts))


def telemetry_key(sensor: dict) -> tuple[str, float]:
    """The key a device sends a sensor's value under, and the factor it applies to our value."""
    key = sensor["id"].replace(".", "_")
    if sensor["metric"] == "flow" and sensor.get("unit") == "MLD":
        return key + "_L_s", LITRES_PER_S_PER_MLD
    return key, 1.0


@dataclass
class DeviceTally:
    telemetry_sent: int = 0          # readings
    telemetry_failed: int = 0
    commands_received: int = 0
    answers_sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


class FieldDevice:
    """One registered device: its token, its keys, its part, and a transport."""

    def __init__(self, device_id: str, token: str, keys: dict[str, tuple[str, float]],
                 behaviour: str | None, slow_s: float, tally: DeviceTally):
        self.id = device_id
        self.token = token
        self.keys = keys                 # sensor id -> (key, factor)
        self.behaviour = behaviour       # None: a sensor device (no actuators)
        self.slow_s = slow_s
        self.tally = tally
        self.received: list[dict] = []
        self._first = True
        self._timers: list[threading.Timer] = []

    # -- telemetry ---------------------------------------------------------------
    def body(self, readings: list[dict]) -> dict:
        values = {}
        for reading in readings:
            key, factor = self.keys[reading["sensor_id"]]
            values[key] = round(reading["value"] * factor, 6)
        if self._first:                 # what firmware says once: version, signal strength
            values.update(fw=FIRMWARE, rssi=-61)
            self._first = False
        if len(readings) == 1:
            return values                                   # {k: v}, stamped on receipt
        return {"ts": int(time.time() * 1000), "values": values}   # the device's own time

    # -- commands --------------------------------------------------------------------
    def on_command(self, command: dict, answer) -> None:
        """What the device does with a command, by its part; `answer(command_id, body)` replies."""
        self.received.append(command)
        self.tally.add(commands_received=1)
        if self.behaviour in (None, "silent"):
            return
        answer(command["id"], {"status": "delivered"})
        if self.behaviour == "failing":
            outcome = {"status": "failed", "result": {"error": "actuator did not move"}}
        else:
            outcome = {"status": "successful", "result": {"method": command.get("method"),
                                                          **(command.get("params") or {})}}
        if self.behaviour == "slow":
            timer = threading.Timer(self.slow_s, answer, (command["id"], outcome))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            answer(command["id"], outcome)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


class HttpTransport:
    """A device on HTTP: telemetry POSTs and a long-poll loop for commands."""

    def __init__(self, url: str, device: FieldDevice, deadline: float):
        self.url = url.rstrip("/")
        self.device = device
        self.deadline = deadline
        self.session = requests.Session()
        self._poller: threading.Thread | None = None

    def send(self, body) -> str | None:
        reply = self.session.post(f"{self.url}/api/v1/{self.device.token}/telemetry", json=body, timeout=10)
        return None if reply.status_code < 300 else f"HTTP {reply.status_code}"

    def listen(self) -> None:
        self._poller = threading.Thread(target=self._poll_loop, daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        with requests.Session() as session:
            while (left := self.deadline - time.monotonic()) > 0.2:
                try:
                    reply = session.get(f"{self.url}/api/v1/{self.device.token}/rpc",
                                        params={"timeout": round(min(POLL_S, left - 0.1), 1)},
                                        timeout=POLL_S + 10)
                    reply.raise_for_status()
                except requests.RequestException as error:
                    self.device.tally.error(f"poll: {type(error).__name__}")
                    time.sleep(min(1.0, max(left - 0.2, 0)))
                    continue
                for command in reply.json()["commands"]:
                    self.device.on_command(command, self.answer)

    def answer(self, command_id: str, body: dict) -> None:
        try:
            reply = requests.post(f"{self.url}/api/v1/{self.device.token}/rpc/{command_id}",
                                  json=body, timeout=10)
            reply.raise_for_status()
            self.device.tally.add(answers_sent=1)
        except requests.RequestException as error:
            self.device.tally.error(f"answer: {type(error).__name__}")

    def close(self) -> None:
        if self._poller:
            self._poller.join(timeout=POLL_S + 11)
        self.session.close()


class MqttTransport:
    """A device on MQTT, logged in as itself: own telemetry topic, own rpc topics, presence."""

    def __init__(self, mqtt_url: str, prefix: str, device: FieldDevice):
        import paho.mqtt.client as mqtt

        parsed = urlparse(mqtt_url)
        self.device = device
        self.own = f"v1/devices/{device.id}"
        self.presence = f"{prefix}/status/{device.id}"
        self.connected = threading.Event()
        self.refused: str | None = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device.id)
        self.client.username_pw_set(device.id, device.token)
        if parsed.scheme == "mqtts":
            self.client.tls_set()
        # An unexpected loss tells the server (and its alarms) the device is gone.
        self.client.will_set(self.presence, "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.client.loop_start()
        if not self.connected.wait(10) or self.refused:
            self.close()
            raise ConnectionError(f"MQTT login of {device.id} refused: {self.refused or 'no answer'}")

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            self.refused = str(reason_code)
        else:
            client.subscribe(f"{self.own}/rpc/request/+", qos=1)
            client.publish(self.presence, "online", qos=1, retain=True)
        self.connected.set()

    def _on_message(self, client, userdata, message):
        try:
            command = json.loads(message.payload)
        except ValueError:
            self.device.tally.error("command not JSON")
            return
        self.device.on_command(command, self.answer)

    def send(self, body) -> str | None:
        info = self.client.publish(f"{self.own}/telemetry", json.dumps(body), qos=1)
        return None if info.rc == 0 else f"MQTT rc {info.rc}"

    def listen(self) -> None:
        pass   # subscribed at every connect

    def answer(self, command_id: str, body: dict) -> None:
        info = self.client.publish(f"{self.own}/rpc/response/{command_id}", json.dumps(body), qos=1)
        if info.rc == 0:
            self.device.tally.add(answers_sent=1)
        else:
            self.device.tally.error(f"answer: MQTT rc {info.rc}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class RegistryClient:
    """The registry and control API as an admin (and, for controls, an operator) uses it."""

    def __init__(self, url: str, admin_token: str, operator_token: str | None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.operator = {"Authorization": f"Bearer {operator_token}"} if operator_token else None

    def register(self, spec: dict) -> dict:
        """Register `spec`; a device of the same id left by an earlier run is replaced."""
        reply = self.session.post(self.url + "/api/devices", json=spec, headers=self.admin, timeout=15)
        if reply.status_code == 409 and spec.get("id"):
            self.delete(spec["id"])
            reply = self.session.post(self.url + "/api/devices", json=spec, headers=self.admin, timeout=15)
        if reply.status_code != 201:
            raise RuntimeError(f"registering {spec.get('id')} failed: {reply.status_code} {reply.text[:300]}")
        return reply.json()

    def delete(self, device_id: str) -> None:
        self.session.delete(f"{self.url}/api/devices/{device_id}", headers=self.admin, timeout=15)

    def control(self, action: str, target: str, value) -> dict:
        reply = self.session.post(self.url + "/api/control", headers=self.operator, timeout=10,
                                  json={"action": action, "target": target, "value": value,
                                        "reason": "device fleet exercise"})
        reply.raise_for_status()
        return reply.json()["control"]

    def commands(self, device_id: str) -> list[dict]:
        reply = self.session.get(self.url + "/api/commands", params={"device_id": device_id, "limit": 1000},
                                 headers=self.admin, timeout=10)
        reply.raise_for_status()
        return reply.json()["commands"]

    def close(self) -> None:
        self.session.close()


@dataclass
class FleetReport:
    """What a run did: per device its part, and the server's commands to it at the end."""

    devices: dict[str, str | None] = field(default_factory=dict)     # device id -> part (None: sensors)
    sensors: dict[str, list[str]] = field(default_factory=dict)      # device id -> its sensor ids
    controls: list[dict] = field(default_factory=list)
    commands: dict[str, list[dict]] = field(default_factory=dict)    # device id -> its commands
    tally: DeviceTally = field(default_factory=DeviceTally)

    def round_trips_ms(self, part: str = "answering") -> list[float]:
        """Control to outcome per finished command of `part` devices, by the server's own times."""
        trips = []
        for device_id, commands in self.commands.items():
            if self.devices[device_id] != part:
                continue
            for command in commands:
                times = {h["state"]: _seconds(h["at"]) for h in command["history"]}
                end = times.get("successful", times.get("failed"))
                if end is not None:
                    trips.append((end - times["queued"]) * 1000)
        return sorted(trips)

    def states(self, part: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for device_id, commands in self.commands.items():
            if part is None or self.devices[device_id] == part:
                for command in commands:
                    counts[command["state"]] = counts.get(command["state"], 0) + 1
        return counts


def _specs(args, network) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Registrations of the sensor devices, and of the actuator devices with their parts."""
    sensors = sorted(network.sensors.values(), key=lambda s: s.id)
    sensor_specs = []
    for index in range(args.devices):
        mine = sensors[index::args.devices]
        if not mine:
            continue
        telemetry = {}
        for sensor in mine:
            key, factor = telemetry_key({"id": sensor.id, "metric": sensor.metric, "unit": sensor.unit})
            telemetry[key] = {"sensor_id": sensor.id, "metric": sensor.metric, "unit": sensor.unit,
                              "scale": 1 / factor}
        sensor_specs.append({"id": f"fleet-{args.seed}-s{index}", "name": f"Fleet sensor node {index}",
                             "kind": "sensor_node", "node_id": mine[0].node, "telemetry": telemetry})
    targets = sorted(link.id for link in network.links.values() if link.kind in ("valve", "pump"))
    count = min(args.actuators, len(targets))
    parts = assign_behaviours(count, args.silent_share, args.slow_share, args.fail_share)
    actuator_specs = [({"id": f"fleet-{args.seed}-a{index}", "name": f"Fleet actuator {index} ({part})",
                        "kind": "actuator_controller", "actuators": targets[index::count],
                        "command_timeout_s": args.command_timeout}, part)
                      for index, part in enumerate(parts)]
    return sensor_specs, actuator_specs


def _send_loop(device: FieldDevice, transport, sensors: list[str], simulation, args,
               per_second: float, deadline: float) -> None:
    pending: list[dict] = []
    due = time.monotonic()
    mine = set(sensors)
    while time.monotonic() < deadline:
        if not pending:
            pending = [r for r in simulation.read_all(time.time()) if r["sensor_id"] in mine]
        chunk, pending = pending[:args.batch], pending[args.batch:]
        if not chunk:
            continue
        try:
            error = transport.send(device.body(chunk))
        except Exception as exc:   # a fleet reports failures, it doesn't stop on them
            error = type(exc).__name__
        if error:
            device.tally.add(telemetry_failed=len(chunk))
            device.tally.error(f"telemetry: {error}")
        else:
            device.tally.add(telemetry_sent=len(chunk))
        due += len(chunk) / per_second
        pause = min(due - time.monotonic(), deadline - time.monotonic())
        if pause > 0:
            time.sleep(pause)


def _control_loop(client: RegistryClient, actuators: list[FieldDevice], targets: dict[str, list[str]],
                  network, every: float, deadline: float, report: FleetReport) -> None:
    """Controls through the operator API, round-robin over the actuators' first targets."""
    turn = 0
    due = time.monotonic() + every
    while actuators and due <= deadline:
        time.sleep(max(due - time.monotonic(), 0))
        due += every
        device = actuators[turn % len(actuators)]
        target = targets[device.id][0]
        if network.links[target].kind == "valve":
            action, value = "set_valve", (turn * 37) % 101
        else:
            action, value = "set_pump", ("on", "off")[turn % 2]
        try:
            report.controls.append(client.control(action, target, value))
        except requests.RequestException as error:
            device.tally.error(f"control: {type(error).__name__}")
        turn += 1


def _settle(client: RegistryClient, actuators: list[FieldDevice], until: float, report: FleetReport) -> None:
    """Wait (bounded) until every command to the fleet has a final state, then keep them."""
    while True:
        for device in actuators:
            report.commands[device.id] = client.commands(device.id)
        open_ = [c for cs in report.commands.values() for c in cs if c["state"] not in FINAL]
        if not open_ or time.monotonic() >= until:
            return
        time.sleep(0.25)


def run_fleet(args, network) -> FleetReport:
    """Register the fleet, run it for `args.duration` s, let commands settle, report, clean up."""
    from app.services.simulation import NetworkSimulation

    client = RegistryClient(args.url, args.admin_token, args.admin_token)
    report = FleetReport()
    tally = report.tally
    sensor_specs, actuator_specs = _specs(args, network)
    devices: list[tuple[FieldDevice, object]] = []
    started = time.monotonic()
    deadline = started + args.duration
    # Commands issued near the end still get their timeout (and a slow device its delay) to settle.
    settle_until = deadline + args.command_timeout + args.slow_s + 2
    try:
        for spec, part in [(s, None) for s in sensor_specs] + actuator_specs:
            created = client.register(spec)
            if args.transport == "mqtt" and created.get("mqtt") != "provisioned":
                logger.warning("device %s: broker login %s (is MQTT_DYNSEC on?)", spec["id"], created.get("mqtt"))
            keys = {}
            for key, mapping in spec.get("telemetry", {}).items():
                keys[mapping["sensor_id"]] = (key, 1 / mapping["scale"])
            device = FieldDevice(created["id"], created["token"], keys, part, args.slow_s, tally)
            transport = (HttpTransport(args.url, device, settle_until) if args.transport == "http"
                         else MqttTransport(args.mqtt_url, args.prefix, device))
            devices.append((device, transport))
            report.devices[device.id] = part
            report.sensors[device.id] = sorted(keys)
        actuators = [d for d, _ in devices if d.behaviour is not None]
        for device, transport in devices:
            if device.behaviour is not None:
                transport.listen()
        sensor_devices = [(d, t) for d, t in devices if d.behaviour is None]
        per_second = args.rate / max(len(sensor_devices), 1)
        threads = [threading.Thread(target=_send_loop, daemon=True, args=(
            d, t, report.sensors[d.id], NetworkSimulation(network, seed=args.seed + i, start=time.time()),
            args, per_second, deadline)) for i, (d, t) in enumerate(sensor_devices)]
        if args.control_every > 0:
            targets = {spec["id"]: spec["actuators"] for spec, _ in actuator_specs}
            threads.append(threading.Thread(target=_control_loop, daemon=True, args=(
                client, actuators, targets, network, args.control_every, deadline, report)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.duration + 15)
        if actuators:
            _settle(client, actuators, settle_until, report)
    finally:
        for device, transport in devices:
            device.cancel()
            if isinstance(transport, HttpTransport):
                transport.deadline = 0      # its poll loop ends after the poll under way
            transport.close()
        if not args.keep:
            for device, _ in devices:
                client.delete(device.id)
        client.close()
    elapsed = time.monotonic() - started
    print(f"registered devices={len(devices)} (sensor nodes {len(sensor_devices)}, actuators {len(actuators)}) "
          f"transport={args.transport} telemetry sent={tally.telemetry_sent} failed={tally.telemetry_failed} "
          f"rate={tally.telemetry_sent / max(args.duration, 1e-9):.0f}/s elapsed={elapsed:.1f}s")
    if actuators:
        for part in BEHAVIOURS:
            if part in report.devices.values():
                states = ", ".join(f"{s}={n}" for s, n in sorted(report.states(part).items())) or "none"
                print(f"  {part} devices: commands {states}")
        trips = report.round_trips_ms()
        if trips:
            print(f"  answering round trip (control to successful) p50={trips[len(trips) // 2]:.0f} ms "
                  f"p99={trips[min(len(trips) - 1, int(0.99 * len(trips)))]:.0f} ms over {len(trips)}")
        print(f"  controls issued={len(report.controls)} commands received={tally.commands_received} "
              f"answers sent={tally.answers_sent}")
    for error, count in sorted(tally.errors.items(), key=lambda item: -item[1]):
        print(f"  {count} x {error}")
    return report
