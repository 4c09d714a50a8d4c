"""The device fleet tool plays registered devices against a real server and a dynsec Mosquitto.

One small run per transport: sensor nodes send key-value telemetry with their
own tokens, actuators answer (or not) the controls the fleet issues.
"""
from __future__ import annotations

import requests

from testkit.helpers import wait_for
from tests.integration.test_device_mqtt import dynsec_server
from tests.integration.test_devices import ADMIN, ADMIN_TOKEN, sensor
from tools import devices


def run(server, broker, transport: str, seed: int):
    return devices.main([
        "--url", server.url, "--admin-token", ADMIN_TOKEN, "--transport", transport,
        "--mqtt-url", f"mqtt://127.0.0.1:{broker.port}", "--seed", str(seed),
        "--devices", "2", "--rate", "40", "--batch", "5", "--duration", "2.5",
        "--actuators", "3", "--silent-share", "0.34", "--slow-share", "0.34", "--slow-s", "0.5",
        "--command-timeout", "3", "--control-every", "0.3", "--keep"])


def ingested(server, source: str) -> int:
    status = requests.get(server.url + "/api/status", timeout=5).json()
    return status["readings"]["ingested"]["by_source"].get(source, 0)


def check(server, report, transport: str) -> None:
    parts = sorted(p for p in report.devices.values() if p)
    assert parts == ["answering", "silent", "slow"], report.devices
    # Every control on a fleet actuator became a command, and reached the state its device plays.
    assert sum(len(c) for c in report.commands.values()) == len(report.controls), report.commands
    for device_id, commands in report.commands.items():
        part = report.devices[device_id]
        assert commands, f"{part} device {device_id} got no command"
        for command in commands:
            states = [h["state"] for h in command["history"]]
            if part == "silent":
                assert states == ["queued", "sent", "timeout"], (part, states)
            else:
                assert states == ["queued", "sent", "delivered", "successful"], (part, states)
                assert command["result"]["method"] == command["method"]
    assert report.tally.commands_received >= len(report.controls), report.tally
    # Every reading sent landed, through the device path of its transport.
    sent = report.tally.telemetry_sent
    assert sent >= 40 and report.tally.telemetry_failed == 0, report.tally
    wait_for(lambda: ingested(server, transport), lambda n: n >= sent, timeout=10)
    for device_id, sensor_ids in report.sensors.items():
        if not sensor_ids:
            continue
        view = requests.get(f"{server.url}/api/devices/{device_id}", timeout=5).json()
        assert view["status"] == "online" and view["attributes"] == {"fw": "bhs-fleet-1"}, view
        assert view["unmapped_keys"] == ["rssi"], view
        flows = [s for s in sensor_ids if s.endswith(".flow")]
        if flows:   # sent in L/s, mapped with a scale back to the network's MLD
            reading = sensor(server, flows[0])
            assert reading and reading["unit"] == "MLD" and reading["value"] >= 0


def test_a_registered_fleet_sends_telemetry_and_answers_commands_over_mqtt_and_http(
        start_server, dynsec_broker):
    server = dynsec_server(start_server, dynsec_broker, "fleet")
    mqtt_run = run(server, dynsec_broker, "mqtt", seed=5)
    check(server, mqtt_run, "mqtt")
    for device_id in mqtt_run.devices:    # --keep left them; the HTTP fleet owns the same sensors
        assert requests.delete(f"{server.url}/api/devices/{device_id}", headers=ADMIN, timeout=10).ok
    http_run = run(server, dynsec_broker, "http", seed=6)
    check(server, http_run, "http")
