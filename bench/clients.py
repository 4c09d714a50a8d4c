"""How many /live clients one process holds, and the fan-out time of a broadcast.

N passive websocket clients join /live (see bench/common.py), plus PROBES
full clients. A sender posts 10 updates/s; the probes time each from the
send to receipt, so the tail is the time for a broadcast to reach the whole
audience. Run: python bench/clients.py [clients]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ClientPool, PassivePool, percentile, rss_mb, stamp, start_server  # noqa: E402

PROBES = 10
UPDATES_PER_S = 10


def run(clients: int = 1000, seconds: float = 15, mode: str = "eventlet") -> dict:
    server = start_server(ASYNC_MODE=mode)
    try:
        passive = PassivePool(server.url, clients - PROBES, hold_s=seconds + 30)
        probes = ClientPool(server.url, PROBES, hold_s=seconds + 5, watch_prefix="fan-")
        held = requests.get(server.url + "/api/status", timeout=10).json()["clients"]
        session = requests.Session()
        end = time.time() + seconds
        k = 0
        while time.time() < end:
            session.post(server.url + "/api/ingest", timeout=10,
                         json={"sensor_id": "fan-1", "value": float(k), "timestamp": stamp(time.time())})
            k += 1
            time.sleep(1 / UPDATES_PER_S)
        values = probes.latencies()
        rss = rss_mb(server.process.pid)
        passive.close()
    finally:
        server.stop()
    return {"clients": held, "connect_s": passive.connect_s, "updates": k, "samples": len(values),
            "fanout_p50": percentile(values, 0.5), "fanout_p99": percentile(values, 0.99),
            "fanout_max": max(values) if values else float("nan"), "rss_mb": rss}


if __name__ == "__main__":
    r = run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    print(f"{r['clients']} /live clients held (connected in {r['connect_s']:.1f} s), RSS {r['rss_mb']:.0f} MB; "
          f"{r['updates']} broadcasts at {UPDATES_PER_S}/s reached the probes in p50 {r['fanout_p50']:.1f} ms, "
          f"p99 {r['fanout_p99']:.1f} ms, max {r['fanout_max']:.1f} ms")
