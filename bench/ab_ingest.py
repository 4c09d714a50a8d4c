"""Single-reading ingest of two checkouts side by side: A/B rounds, same load generator.

Both servers run at once (with auth, the default rate limit and InfluxDB on,
10 passive /live clients each); wrk drives one then the other, `rounds` times,
so drifting load on a shared machine falls on both alike. Reports requests/s
and the server's CPU per request for each round, and their medians.

    python bench/ab_ingest.py BEFORE_ROOT [AFTER_ROOT] [--rounds 3] [--seconds 5] [--mode eventlet]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Influx, PassivePool  # noqa: E402
from bench.http_ingest import HEADERS, INGEST_RATE_LIMIT, KEY, SINGLE  # noqa: E402
from bench.load import cpu_seconds, wrk_post  # noqa: E402
from bench.profile import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path, nargs="?", default=ROOT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--mode", default="eventlet")
    args = parser.parse_args()
    influx = Influx()
    servers = {name: Server(root, **influx.env(), ASYNC_MODE=args.mode, DEVICE_KEYS=f"bench={KEY}",
                            INGEST_RATE_LIMIT=INGEST_RATE_LIMIT)
               for name, root in (("before", args.before), ("after", args.after))}
    pools = [PassivePool(s.url, 10, hold_s=args.rounds * 2 * (args.seconds + 3) + 30) for s in servers.values()]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    try:
        for _ in range(args.rounds):
            for name, server in servers.items():
                cpu = cpu_seconds(server.process.pid)
                r = wrk_post(server.url + "/api/ingest", SINGLE, args.seconds, headers=HEADERS)
                cpu = cpu_seconds(server.process.pid) - cpu
                results[name].append((r["requests_per_s"], 1000 * cpu / max(1, r["requests"])))
                print(f"  {name}: {r['requests_per_s']:,.0f} requests/s, {results[name][-1][1]:.2f} ms CPU/request "
                      f"(non-2xx {r['non_2xx']})", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        for pool in pools:
            pool.close()
        influx.close()
    for name, rows in results.items():
        print(f"{name}: median {statistics.median(r for r, _ in rows):,.0f} requests/s, "
              f"{statistics.median(c for _, c in rows):.2f} ms CPU/request over {len(rows)} rounds")


if __name__ == "__main__":
    main()
