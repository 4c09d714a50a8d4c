"""A 30-day chart of one sensor at 1 reading / 15 s: raw points against the 1 h rollup.

Starts a real influxd (Debian's 1.6.7) and a real server on loopback, loads
30 days of one sensor (172,800 points) straight into InfluxDB, rolls them up
with the same statements the server uses for back-fills, then times, through
the server's API, the three ways a month's chart can be drawn:

  1. rollup:   GET /api/history/<id>?start=-30d           (answers from the 1 h rollup)
  2. raw agg:  GET /api/history/<id>?start=-30d&every=1h&fn=mean|min|max&resolution=raw
               (the same hourly means and bands, computed from raw points at query time:
               three requests, as the chart does against a server without rollups)
  3. raw:      GET /api/history/export?...&resolution=raw  (every raw point, streamed)

and, for where the time goes, the two InfluxQL reads behind 1 and 2 sent to influxd directly.

Prints a table (median and worst of ROUNDS runs each) and a JSON line.
Run: python bench/history_query.py [rounds]
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.adapters.influx_schema import backfill_statements  # noqa: E402
from bench.common import Influx, start_server  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 and __name__ == "__main__" else 5
DAYS = 30
INTERVAL_S = 15
SENSOR = "BENCH.flow"
LOAD_BATCH = 10_000


def load(influx: Influx, now: float) -> int:
    """30 days of one sensor, written directly (the load is not what is measured)."""
    start = now - DAYS * 86400
    count = DAYS * 86400 // INTERVAL_S
    url = influx.server.url + "/write"
    for first in range(0, count, LOAD_BATCH):
        body = "\n".join(
            f"sensor_reading,metric=flow,sensor_id={SENSOR},source=sensor "
            f"value={100 + (k % 240) / 10 + (25.0 if k % 5000 == 0 else 0.0)} {int((start + k * INTERVAL_S) * 1e9)}"
            for k in range(first, min(count, first + LOAD_BATCH)))
        requests.post(url, params={"db": "bench"}, data=body, timeout=60).raise_for_status()
    return count


def timed(call) -> tuple[float, object]:
    began = time.perf_counter()
    result = call()
    return (time.perf_counter() - began) * 1000, result


def run(rounds: int = ROUNDS) -> dict:
    influx = Influx()
    server = None
    try:
        server = start_server(**influx.env(), INFLUXDB_ORG="bhs")
        deadline = time.monotonic() + 30
        while requests.get(server.url + "/api/status").json()["history"]["schema"]["state"] != "ready":
            assert time.monotonic() < deadline, "rollup setup did not finish"
            time.sleep(0.2)
        now = time.time()
        points = load(influx, now)
        began = time.perf_counter()
        for statement in backfill_statements("bench", "autogen", SENSOR, now - DAYS * 86400, now):
            requests.post(influx.server.url + "/query", params={"db": "bench", "q": statement},
                          timeout=300).raise_for_status()
        rollup_build_s = time.perf_counter() - began

        history = f"{server.url}/api/history/{SENSOR}"
        cases = {
            "rollup (1h)": lambda: requests.get(history, params={"start": f"-{DAYS}d"}, timeout=120).json(),
            "raw, hourly mean+min+max at query time": lambda: [requests.get(history, params={
                "start": f"-{DAYS}d", "every": "1h", "fn": fn, "resolution": "raw"}, timeout=120).json()
                for fn in ("mean", "min", "max")][0],
            "raw, every point (export)": lambda: requests.get(server.url + "/api/history/export", params={
                "sensor_id": SENSOR, "start": f"-{DAYS}d", "resolution": "raw", "format": "csv"},
                timeout=300).content,
        }
        where = f"\"sensor_id\" = '{SENSOR}' AND time >= now() - {DAYS}d"
        direct = influx.server.url + "/query"

        def influxql(text):
            return lambda: requests.post(direct, params={"db": "bench", "q": text}, timeout=120).json()
        cases["InfluxQL only: 1h rollup rows"] = influxql(
            f'SELECT "mean", "min", "max", "count" FROM "bench"."bhs_1h"."sensor_reading" WHERE {where}')
        cases["InfluxQL only: GROUP BY time(1h) on raw"] = influxql(
            f'SELECT mean("value"), min("value"), max("value"), count("value") FROM "sensor_reading" '
            f"WHERE {where} GROUP BY time(1h) fill(none)")
        results = {}
        for name, call in cases.items():
            call()                                   # warm caches once
            times, last = [], None
            for _ in range(rounds):
                ms, last = timed(call)
                times.append(ms)
            if isinstance(last, dict) and "results" in last:
                rows = sum(len(x.get("values", [])) for x in last["results"][0].get("series", []))
            else:
                rows = len(last["points"]) if isinstance(last, dict) else last.count(b"\n") - 1
            size = len(json.dumps(last)) if isinstance(last, dict) else len(last)
            results[name] = {"median_ms": round(statistics.median(times), 1), "worst_ms": round(max(times), 1),
                             "rows": rows, "bytes": size}
        answer = cases["rollup (1h)"]()
        results["rollup (1h)"]["resolution"] = answer["resolution"]
        results["rollup (1h)"]["bands"] = "min" in answer["points"][0]
        return {"points_stored": points, "days": DAYS, "interval_s": INTERVAL_S, "rounds": rounds,
                "rollup_backfill_s": round(rollup_build_s, 2), "cases": results}
    finally:
        if server:
            server.stop()
        influx.close()


def main() -> None:
    result = run()
    print(f"30-day chart of one sensor, {result['points_stored']:,} raw points at 1/{INTERVAL_S} s "
          f"(rollups back-filled in {result['rollup_backfill_s']} s); {result['rounds']} rounds each")
    print(f"{'how':40} {'median ms':>10} {'worst ms':>10} {'rows':>9} {'bytes':>11}")
    for name, r in result["cases"].items():
        print(f"{name:40} {r['median_ms']:>10} {r['worst_ms']:>10} {r['rows']:>9,} {r['bytes']:>11,}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
