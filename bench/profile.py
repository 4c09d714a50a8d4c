"""Flame graphs (py-spy, SVG) of the running server on the ingest and latency paths.

    python bench/profile.py after                       # this checkout
    python bench/profile.py before --server-root DIR    # another checkout, same harness

Ingest: single readings by wrk (8 connections, device key, default rate
limit, InfluxDB on, 10 passive /live clients), 10 s recorded. Latency: 500
readings/s from paced senders to 50 /live clients (10 probes), InfluxDB on,
10 s recorded. Writes bench/profiles/{ingest,latency}-<label>.svg and prints
the figures measured while recording (py-spy samples 100 times a second from
outside the process, so it costs the server little).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import QUIET, Influx, PassivePool, percentile  # noqa: E402
from bench.http_ingest import HEADERS, INGEST_RATE_LIMIT, KEY, SINGLE  # noqa: E402
from bench.latency import PREFIX, PROBES  # noqa: E402
from bench.load import ProbePool, Senders, py_spy, wrk_post  # noqa: E402
from testkit.ports import free_port  # noqa: E402
from testkit.server import OPERATOR_TOKEN  # noqa: E402

PROFILES = ROOT / "bench" / "profiles"
SECONDS = 10


class Server:
    """`python run.py` from `root` (any checkout), as the tests start it."""

    def __init__(self, root: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder = Path(tempfile.mkdtemp(prefix="bench-profile-"))
        self.log = open(folder / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "run.py"], cwd=root, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, **QUIET, "HOST": "127.0.0.1", "PORT": str(self.port),
                 "OPERATOR_TOKENS": f"ops={OPERATOR_TOKEN}", "INSTANCE_DIR": str(folder / "instance"),
                 **env})
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start; see {folder / 'server.log'}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def ingest(root: Path, label: str, influx: Influx) -> str:
    server = Server(root, **influx.env(), DEVICE_KEYS=f"bench={KEY}", INGEST_RATE_LIMIT=INGEST_RATE_LIMIT)
    pool = PassivePool(server.url, 10, hold_s=SECONDS + 30)
    try:
        spy = py_spy(server.process.pid, SECONDS, PROFILES / f"ingest-{label}.svg")
        result = wrk_post(server.url + "/api/ingest", SINGLE, SECONDS, headers=HEADERS)
        spy.wait(timeout=60)
    finally:
        server.stop()
        pool.close()
    return f"ingest {label}: {result['requests_per_s']:,.0f} requests/s (non-2xx {result['non_2xx']})"


def latency(root: Path, label: str, influx: Influx, rate: int = 500, clients: int = 50) -> str:
    server = Server(root, **influx.env())
    try:
        passive = PassivePool(server.url, clients - PROBES, hold_s=SECONDS + 15)
        probes = ProbePool(server.url, PROBES, PREFIX, hold_s=SECONDS + 120)
        senders = Senders(server.url, rate, SECONDS, PREFIX)
        time.sleep(max(0.0, senders.start_at - time.time()))
        spy = py_spy(server.process.pid, SECONDS, PROFILES / f"latency-{label}.svg")
        senders.join()
        spy.wait(timeout=60)
        values = probes.latencies()
        passive.close()
    finally:
        server.stop()
    return (f"latency {label}: {rate}/s to {clients} clients, p50 {percentile(values, 0.5):.0f} / "
            f"p99 {percentile(values, 0.99):.0f} ms ({len(values)} samples)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("label")
    parser.add_argument("--server-root", type=Path, default=ROOT)
    args = parser.parse_args()
    influx = Influx()
    try:
        print(ingest(args.server_root, args.label, influx), flush=True)
        print(latency(args.server_root, args.label, influx), flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}; wrote {PROFILES}/ingest-{args.label}.svg and "
              f"latency-{args.label}.svg")
    finally:
        influx.close()
