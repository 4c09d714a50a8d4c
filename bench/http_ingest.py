"""HTTP ingest throughput with everything on, beside a bare Flask app on the same server.

Ours: the real server (`python run.py`) with InfluxDB history, device-key
auth (DEVICE_KEYS, the key in X-API-Key), the default rate limit
(5000/s per key), validation, analysis hooks and broadcasting to 10 passive
/live clients. wrk drives 8 connections: batches of 500 readings to
/api/sensors, then single readings to /api/ingest. The ceiling is
bench/relay.py's bare Flask view (parse the JSON, keep it, answer 201) on
the same async mode's server, driven the same way.

    python bench/http_ingest.py [seconds] [async_mode] [profile.svg]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Influx, PassivePool, start_server  # noqa: E402
from bench.latency import Relay  # noqa: E402
from bench.load import cpu_seconds, py_spy, wrk_post  # noqa: E402

KEY = "bench-device-key"
HEADERS = {"X-API-Key": KEY}
SINGLE = json.dumps({"sensor_id": "http-single", "value": 1.5})
BATCH = json.dumps([{"sensor_id": f"http-{i % 2000}", "value": (i % 97) / 3, "metric": "flow"}
                    for i in range(500)])
# The product's default, so rate limiting runs as it would in production.
INGEST_RATE_LIMIT = "5000 per second"


def ours(seconds: int = 10, mode: str = "eventlet", profile: Path | None = None,
         batched: bool = True) -> dict:
    influx = Influx()
    server = start_server(**influx.env(), ASYNC_MODE=mode, DEVICE_KEYS=f"bench={KEY}",
                          INGEST_RATE_LIMIT=INGEST_RATE_LIMIT)
    pool = PassivePool(server.url, 10, hold_s=2 * seconds + 70)
    result = {}
    try:
        if batched:
            b = wrk_post(server.url + "/api/sensors", BATCH, seconds, headers=HEADERS)
            result.update(batched_readings_per_s=b["requests_per_s"] * 500, batched_errors=b["non_2xx"])
            # Let the history writer drain the batched run before the next one.
            deadline = time.time() + 60
            while time.time() < deadline and requests.get(server.url + "/api/status").json()["history"]["queued"]:
                time.sleep(0.5)
        spy = py_spy(server.process.pid, seconds, profile) if profile else None
        cpu = cpu_seconds(server.process.pid)
        s = wrk_post(server.url + "/api/ingest", SINGLE, seconds, headers=HEADERS)
        cpu = cpu_seconds(server.process.pid) - cpu
        if spy:
            spy.wait(timeout=60)
        result.update(single_requests_per_s=s["requests_per_s"], single_errors=s["non_2xx"],
                      single_cpu_ms=1000 * cpu / max(1, s["requests"]))
    finally:
        server.stop()
        influx.close()
        pool.close()
    return result


def ceiling(seconds: int = 10, mode: str = "eventlet") -> dict:
    relay = Relay(mode, 50, True)
    try:
        cpu = cpu_seconds(relay.process.pid)
        s = wrk_post(relay.url + "/api/ingest", SINGLE, seconds, headers=HEADERS)
        cpu = cpu_seconds(relay.process.pid) - cpu
    finally:
        relay.stop()
    return {"single_requests_per_s": s["requests_per_s"], "single_errors": s["non_2xx"],
            "single_cpu_ms": 1000 * cpu / max(1, s["requests"])}


def run(seconds: int = 10, mode: str = "eventlet", profile: Path | None = None) -> dict:
    a = ours(seconds, mode, profile)
    b = ceiling(seconds, mode)
    return {**a, "mode": mode, "ceiling_single_requests_per_s": b["single_requests_per_s"],
            "ceiling_single_cpu_ms": b["single_cpu_ms"],
            "single_ratio": a["single_requests_per_s"] / b["single_requests_per_s"]}


if __name__ == "__main__":
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    mode = sys.argv[2] if len(sys.argv) > 2 else "eventlet"
    profile = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    r = run(seconds, mode, profile)
    print(f"{mode}: batched (500/request) {r['batched_readings_per_s']:,.0f} readings/s "
          f"(non-2xx {r['batched_errors']}); target >= 50,000")
    print(f"{mode}: single readings {r['single_requests_per_s']:,.0f} requests/s (non-2xx {r['single_errors']}) "
          f"against a bare Flask app's {r['ceiling_single_requests_per_s']:,.0f} = {r['single_ratio']:.0%}; "
          "target >= 2,000")
    print(f"{mode}: CPU per single-reading request: ours {r['single_cpu_ms']:.2f} ms, "
          f"bare Flask {r['ceiling_single_cpu_ms']:.2f} ms")
