"""Registered devices end to end: key-value telemetry rate and command round trips, HTTP and MQTT.

Starts a real Mosquitto with the dynamic-security plugin and the real server
(`python run.py`, eventlet, MQTT_DYNSEC on), then runs the fleet tool
(tools/devices.py --admin-token) once per transport: sensor nodes sending
key-value telemetry with their own tokens, actuators answering the controls
it issues (a share of them silent). Prints the telemetry rate reached against
the rate asked for, every reading counted in by the server, and the round
trip of a command from the control to its `successful` (the server's own
transition times), p50 and p99. Bounded: two runs of DURATION_S plus the
commands' timeout. Run: python bench/device_fleet.py [seconds]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import start_server  # noqa: E402
from testkit.services import MosquittoBroker  # noqa: E402
from tools import devices  # noqa: E402

DURATION_S = 15.0
ADMIN_TOKEN = "bench-admin-token"
# Asked-for load: readings/s over all sensor nodes, controls every CONTROL_EVERY_S.
RATE, SENSOR_NODES, ACTUATORS, CONTROL_EVERY_S = 500, 10, 10, 0.1


def ingested(server, source: str) -> int:
    return requests.get(server.url + "/api/status", timeout=5).json()["readings"]["ingested"][
        "by_source"].get(source, 0)


def run(duration_s: float = DURATION_S) -> list[dict]:
    broker = MosquittoBroker(Path(tempfile.mkdtemp(prefix="bench-dynsec-")), dynsec=True).start()
    server = start_server(MQTT_URL=broker.url, MQTT_DYNSEC="on", ADMIN_TOKENS=ADMIN_TOKEN,
                          MQTT_CLIENT_ID="bhs-bench-devices")
    rows = []
    try:
        deadline = time.monotonic() + 20
        while not requests.get(server.url + "/api/status").json()["mqtt"].get("dynsec", {}).get("ready"):
            assert time.monotonic() < deadline, "dynsec never became ready"
            time.sleep(0.2)
        for seed, transport in enumerate(("http", "mqtt")):
            before = ingested(server, transport)
            report = devices.main([
                "--url", server.url, "--admin-token", ADMIN_TOKEN, "--transport", transport,
                "--mqtt-url", f"mqtt://127.0.0.1:{broker.port}", "--seed", str(seed),
                "--devices", str(SENSOR_NODES), "--rate", str(RATE), "--batch", "5",
                "--duration", str(duration_s), "--actuators", str(ACTUATORS), "--silent-share", "0.2",
                "--command-timeout", "5", "--control-every", str(CONTROL_EVERY_S)])
            sent = report.tally.telemetry_sent
            counted_deadline = time.monotonic() + 10
            while ingested(server, transport) - before < sent and time.monotonic() < counted_deadline:
                time.sleep(0.2)
            trips = report.round_trips_ms()
            rows.append({"transport": transport, "readings_per_s": sent / duration_s, "asked": RATE,
                         "counted": ingested(server, transport) - before, "sent": sent,
                         "commands": report.states(), "round_trip_p50_ms": trips[len(trips) // 2] if trips else None,
                         "round_trip_p99_ms": trips[min(len(trips) - 1, int(0.99 * len(trips)))] if trips else None})
    finally:
        server.stop()
        broker.stop()
    print("\ntransport  readings/s (asked)  counted/sent   commands                       round trip p50 / p99")
    for row in rows:
        states = ", ".join(f"{k}={v}" for k, v in sorted(row["commands"].items()))
        print(f"{row['transport']:<9}  {row['readings_per_s']:>7.0f} ({row['asked']})  "
              f"{row['counted']:>6}/{row['sent']:<6}  {states:<30} "
              f"{row['round_trip_p50_ms'] or float('nan'):.0f} / {row['round_trip_p99_ms'] or float('nan'):.0f} ms")
    return rows


if __name__ == "__main__":
    run(float(sys.argv[1]) if len(sys.argv) > 1 else DURATION_S)
