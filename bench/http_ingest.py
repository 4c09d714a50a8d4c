"""HTTP ingest throughput with the full pipeline on (InfluxDB history, analysis, broadcasting).

wrk drives 8 concurrent connections: batches of 500 readings to /api/sensors,
then single readings to /api/ingest. Ten /live clients are connected so frames
really go out. Run: python bench/http_ingest.py [seconds]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ClientPool, Influx, start_server, wrk  # noqa: E402


def run(seconds: int = 10) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-http-"))
    batch = folder / "batch.json"
    batch.write_text(json.dumps([{"sensor_id": f"http-{i % 2000}", "value": (i % 97) / 3, "metric": "flow"}
                                 for i in range(500)]))
    single = folder / "single.json"
    single.write_text(json.dumps({"sensor_id": "http-single", "value": 1.5}))
    influx = Influx()
    server = start_server(**influx.env())
    pool = ClientPool(server.url, 10, hold_s=2 * seconds + 10, watch_prefix="none")
    try:
        batched = wrk(server.url + "/api/sensors", batch, seconds)
        # Let the history writer drain the batched run before the next one.
        deadline = time.time() + 60
        while time.time() < deadline and requests.get(server.url + "/api/status").json()["history"]["queued"]:
            time.sleep(0.5)
        singles = wrk(server.url + "/api/ingest", single, seconds)
    finally:
        pool.latencies()
        server.stop()
        influx.close()
    return {"batched_readings_per_s": batched["requests_per_s"] * 500, "batched_errors": batched["non_2xx"],
            "single_requests_per_s": singles["requests_per_s"], "single_errors": singles["non_2xx"]}


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
    print(f"batched (500/request): {result['batched_readings_per_s']:.0f} readings/s "
          f"(non-2xx {result['batched_errors']}); target >= 50,000")
    print(f"single readings:      {result['single_requests_per_s']:.0f} requests/s "
          f"(non-2xx {result['single_errors']}); target >= 2,000")
