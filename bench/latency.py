"""End-to-end latency: a device's POST to receipt by every /live client, ours against a ceiling.

Ours is the real server (`python run.py`, InfluxDB history on, every analysis
hook on). The ceiling is bench/relay.py: a bare Flask-SocketIO relay on the
same async mode with the same coalescing interval and leading edge and no
pipeline. Both are measured in the same run by the same harness
(bench/load.py: paced keep-alive senders in 2 processes, 10 regex probes in
one, the rest of the audience passive websocket connections), one after the
other. Latency is from the sender's clock at send to the probe's at receipt.
CPU per reading is the server process's user+system time over the load,
divided by the readings sent.

    python bench/latency.py [rate] [clients] [interval_ms] [leading 1|0] [async_mode]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Influx, PassivePool, percentile, start_server  # noqa: E402
from bench.load import ProbePool, Senders, cpu_seconds  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PREFIX = "lat-"
PROBES = 10
SECONDS = 10


class Relay:
    """bench/relay.py on a free port."""

    def __init__(self, mode: str, interval_ms: int, leading_edge: bool):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "relay.py"), str(self.port), mode, str(interval_ms),
             "1" if leading_edge else "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("relay did not start")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(url: str, pid: int, rate: int, clients: int, seconds: float = SECONDS) -> dict:
    """Hold `clients` on /live (PROBES of them timing), send `rate` readings/s for `seconds`."""
    load_before = os.getloadavg()[0]
    passive = PassivePool(url, clients - PROBES, hold_s=seconds + 30)
    probes = ProbePool(url, PROBES, PREFIX, hold_s=seconds + 120)
    cpu_before = cpu_seconds(pid)
    senders = Senders(url, rate, seconds, PREFIX)
    sent = senders.join()
    cpu = cpu_seconds(pid) - cpu_before
    values = probes.latencies()
    passive.close()
    return {"clients": passive.connected + probes.connected, "sent": sent, "samples": len(values),
            "p50": percentile(values, 0.50), "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99), "max": max(values) if values else float("nan"),
            "cpu_ms_per_reading": 1000 * cpu / sent if sent else float("nan"),
            "cpu_share": cpu / seconds, "load_average": (load_before + os.getloadavg()[0]) / 2,
            # Senders' and probes' own CPU per reading: what the harness costs the shared cores.
            "harness_cpu_ms_per_reading": 1000 * (senders.cpu_s + probes.cpu_s) / sent if sent else float("nan")}


def ours(rate: int, clients: int, interval_ms: int = 50, leading_edge: bool = True,
         mode: str = "eventlet", influx: Influx | None = None, seconds: float = SECONDS) -> dict:
    own = influx is None
    influx = influx or Influx()
    try:
        server = start_server(**influx.env(), ASYNC_MODE=mode, BROADCAST_INTERVAL_MS=str(interval_ms),
                              BROADCAST_LEADING_EDGE="true" if leading_edge else "false")
        try:
            result = measure(server.url, server.process.pid, rate, clients, seconds)
            status = requests.get(server.url + "/api/status", timeout=10).json()
            result["tick_late_ms"] = status["broadcast"].get("tick_late_ms")
            return result
        finally:
            server.stop()
    finally:
        if own:
            influx.close()


def ceiling(rate: int, clients: int, interval_ms: int = 50, leading_edge: bool = True,
            mode: str = "eventlet", seconds: float = SECONDS) -> dict:
    relay = Relay(mode, interval_ms, leading_edge)
    try:
        return measure(relay.url, relay.process.pid, rate, clients, seconds)
    finally:
        relay.stop()


def compare(rate: int, clients: int, interval_ms: int = 50, leading_edge: bool = True,
            mode: str = "eventlet", influx: Influx | None = None, seconds: float = SECONDS) -> dict:
    """Ours, then the ceiling, with the same harness: {"ours", "ceiling", "ratio"} (p99 over p99)."""
    a = ours(rate, clients, interval_ms, leading_edge, mode, influx, seconds)
    b = ceiling(rate, clients, interval_ms, leading_edge, mode, seconds)
    return {"rate": rate, "clients": clients, "interval_ms": interval_ms, "leading_edge": leading_edge,
            "mode": mode, "ours": a, "ceiling": b, "ratio": a["p99"] / b["p99"] if b["p99"] else float("nan")}


def describe(r: dict) -> str:
    o, c = r["ours"], r["ceiling"]
    return (f"{r['mode']} {r['rate']}/s, {o['clients']} clients, {r['interval_ms']} ms "
            f"{'leading edge' if r['leading_edge'] else 'plain tick'}: ours p50 {o['p50']:.1f} / p95 "
            f"{o['p95']:.1f} / p99 {o['p99']:.1f} ms, {o['cpu_ms_per_reading']:.2f} ms CPU/reading; "
            f"ceiling p50 {c['p50']:.1f} / p99 {c['p99']:.1f} ms, {c['cpu_ms_per_reading']:.2f} ms CPU/reading; "
            f"p99 ratio {r['ratio']:.2f} ({o['samples']} / {c['samples']} samples)")


if __name__ == "__main__":
    args = sys.argv[1:]
    rate = int(args[0]) if len(args) > 0 else 500
    clients = int(args[1]) if len(args) > 1 else 50
    interval = int(args[2]) if len(args) > 2 else 50
    leading = (args[3] != "0") if len(args) > 3 else True
    mode = args[4] if len(args) > 4 else "eventlet"
    print(describe(compare(rate, clients, interval, leading, mode)))
