"""The coalescing interval study: latency and CPU per reading at 10, 25 and 50 ms,
with and without the leading edge, each beside the bare relay's ceiling.

Every configuration runs ours then the ceiling with the same harness
(bench/latency.py), `--repeats` times, interleaved so that drifting load on a
shared machine falls on both; the medians of the repeats are reported. Writes
bench/results/interval_study.json.

    python bench/interval_study.py [--rate 500] [--clients 50] [--repeats 2] [--mode eventlet] [--pin] [--nice -15]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import latency  # noqa: E402
from bench.common import Influx  # noqa: E402

INTERVALS_MS = (10, 25, 50)
KEYS = ("p50", "p95", "p99", "cpu_ms_per_reading")


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in KEYS} | {
        "runs": [{k: round(r[k], 2) for k in KEYS} for r in runs],
        "samples": sum(r["samples"] for r in runs)}


def study(rate: int, clients: int, repeats: int, mode: str, seconds: float, pin: bool = False,
          nice: int | None = None) -> list[dict]:
    influx = Influx()
    rows = []
    try:
        for interval in INTERVALS_MS:
            for leading in (True, False):
                ours, ceiling, late = [], [], []
                for _ in range(repeats):
                    o = latency.ours(rate, clients, interval, leading, mode, influx, seconds, pin=pin, nice=nice)
                    ours.append(o)
                    late.append((o.get("tick_late_ms") or {}).get("p99"))
                    ceiling.append(latency.ceiling(rate, clients, interval, leading, mode, seconds, pin=pin,
                                                   nice=nice))
                row = {"interval_ms": interval, "leading_edge": leading, "rate": rate, "clients": clients,
                       "mode": mode, "load_average": [r["load_average"] for r in ours + ceiling], "ours": median_of(ours), "ceiling": median_of(ceiling),
                       "tick_late_p99_ms": late}
                row["ratio"] = row["ours"]["p99"] / row["ceiling"]["p99"]
                rows.append(row)
                print(describe(row), flush=True)
    finally:
        influx.close()
    return rows


def describe(row: dict) -> str:
    o, c = row["ours"], row["ceiling"]
    return (f"{row['interval_ms']:>3} ms {'leading edge' if row['leading_edge'] else 'plain tick  '}: "
            f"ours p50 {o['p50']:.0f} / p95 {o['p95']:.0f} / p99 {o['p99']:.0f} ms, "
            f"{o['cpu_ms_per_reading']:.2f} ms CPU/reading | ceiling p50 {c['p50']:.0f} / p99 {c['p99']:.0f} ms, "
            f"{c['cpu_ms_per_reading']:.2f} ms CPU/reading | p99 ratio {row['ratio']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mode", default="eventlet")
    parser.add_argument("--seconds", type=float, default=latency.SECONDS)
    parser.add_argument("--pin", action="store_true", help="server on the last CPU, the harness on the others")
    parser.add_argument("--nice", type=int, help="the bench's autogroup niceness (root), see bench/latency.py")
    args = parser.parse_args()
    if args.nice is not None:
        latency.raise_group_priority(args.nice)
    rows = study(args.rate, args.clients, args.repeats, args.mode, args.seconds, args.pin, args.nice)
    out = ROOT / "bench" / "results" / f"interval_study_{args.rate}_{args.clients}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")
