"""The benchmark suite: one command, a results table, its method.

    python bench/run_all.py            # about 10 minutes (the soak is 5 of them)
    python bench/run_all.py --soak 60  # a shorter soak

Every benchmark starts the real server (`python run.py`, eventlet) and, where
relevant, a real Mosquitto and InfluxDB, on 127.0.0.1; every load is bounded
in count and time. The load generators share the machine's cores with the
server, so the numbers are noisy and pessimistic. Nothing here fails: it
prints.
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import clients, dashboard_fps, http_ingest, latency, memory, mqtt_ingest, routing_solve  # noqa: E402
from bench.common import cpu_count  # noqa: E402


def solve_medians() -> tuple[float, float]:
    from app.config import BUNDLED_NETWORK
    from app.services.network import Network
    from app.services.routing import RoutingInputs, RoutingModel

    def median_ms(network, repeats=20):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            RoutingModel(network).solve(RoutingInputs(demand={}))
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    return median_ms(Network.load(BUNDLED_NETWORK)), median_ms(routing_solve.synthetic(), 7)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--soak", type=float, default=300, help="soak seconds (default 300)")
    args = parser.parse_args()
    rows = []

    def row(name, result, target, method):
        rows.append((name, result, target, method))
        print(f"  {name}: {result}", flush=True)

    print("HTTP ingest ...", flush=True)
    h = http_ingest.run(10)
    row("HTTP batched ingest", f"{h['batched_readings_per_s']:,.0f} readings/s", ">= 50,000",
        "wrk, 8 connections, 500 readings/request, 10 s; InfluxDB on, 10 /live clients")
    row("HTTP single-reading ingest", f"{h['single_requests_per_s']:,.0f} requests/s "
        f"(bare Flask {h['ceiling_single_requests_per_s']:,.0f})", ">= 2,000",
        "wrk, 8 connections, 1 reading/request, 10 s; auth + rate limit on")

    print("MQTT ingest ...", flush=True)
    mqtt_ingest.MESSAGES = 50_000
    import tempfile
    from tests.services import MosquittoBroker
    broker = MosquittoBroker(Path(tempfile.mkdtemp(prefix="bench-mq-"))).start()
    try:
        ceiling = mqtt_ingest.bare(broker)
        ours = mqtt_ingest.ours(broker, Path(tempfile.mkdtemp(prefix="bench-mq-server-")))
    finally:
        broker.stop()
    row("MQTT ingest vs bare paho", f"{ours:,.0f} msg/s = {ours / ceiling:.0%} of {ceiling:,.0f}", ">= 60%",
        "50k QoS 1 messages by mosquitto_pub -l; ceiling: bare paho subscriber, no eventlet")

    print("End-to-end latency ...", flush=True)
    for rate, audience in ((500, 50), (1000, 200)):
        r = latency.compare(rate, audience)
        target = "p99 < 50 ms" if rate == 500 else "p99 < 100 ms"
        row(f"latency HTTP {rate}/s, {r['ours']['clients']} clients, frames every {r['interval_ms']} ms",
            f"p50 {r['ours']['p50']:.0f} / p95 {r['ours']['p95']:.0f} / p99 {r['ours']['p99']:.0f} ms "
            f"(ceiling p99 {r['ceiling']['p99']:.0f} ms, {r['ratio']:.2f}x)", target,
            "POST to receipt by 10 probes; the rest passive websocket clients; InfluxDB on; "
            "ceiling: bare Flask-SocketIO relay")

    print("Clients ...", flush=True)
    c = clients.run(1000)
    row("/live clients held", f"{c['clients']:,} (RSS {c['rss_mb']:.0f} MB)", ">= 1,000",
        "passive websocket clients + 10 probes, 10 updates/s")
    row("fan-out of one broadcast to 1,000", f"p50 {c['fanout_p50']:.0f} / p99 {c['fanout_p99']:.0f} ms", "",
        "send to receipt by probes while 1,000 clients listen")

    print("Routing solve ...", flush=True)
    bundled, synthetic = solve_medians()
    row("routing solve, bundled network", f"{bundled:.1f} ms median", "< 10 ms", "build + solve, HiGHS")
    row("routing solve, 1,000 nodes / 3,000 links", f"{synthetic:.0f} ms median", "< 150 ms", "build + solve, HiGHS")

    print("Dashboard ...", flush=True)
    d = dashboard_fps.run()
    row("dashboard frame rate", f"{d['fps']:.0f} fps, p99 frame {d['p99_frame_ms']:.0f} ms", "60 fps",
        "headless Chromium, simulator + 500 readings/s, node trends open, 10 s of rAF")

    print("Memory ...", flush=True)
    m = memory.per_10k_sensors()
    row("memory per 10,000 sensors", f"{m['per_10k_sensors_mb']:.0f} MB", "bounded",
        "RSS before/after 10k sensors x 120 points, embedded history")
    s = memory.soak(args.soak)
    row(f"memory over a {s['seconds']:.0f} s soak", f"{s['rss_start_mb']:.0f} -> {s['rss_mid_mb']:.0f} -> "
        f"{s['rss_end_mb']:.0f} MB ({s['growth_mb_per_min_second_half']:+.2f} MB/min, 2nd half)", "flat",
        "simulator + 1,000 readings/s + 20 clients, InfluxDB history; RSS every 10 s")

    print()
    print(f"Results, {datetime.date.today()}, {cpu_count()} cores (a shared, noisy machine; load generators "
          "on the same cores)")
    print()
    print("| benchmark | result | target | method |")
    print("|---|---|---|---|")
    for name, result, target, method in rows:
        print(f"| {name} | {result} | {target} | {method} |")


if __name__ == "__main__":
    main()
