"""Cluster scale-out: ingest throughput and end-to-end latency for 1, 2 and 3 instances.

Each size is a fresh cluster on loopback: Redis, N instances with REDIS_URL
(so even N=1 pays for the stream and the message queue) and nginx in front.
wrk posts batches of 100 readings through nginx (no route cookie, so the
requests spread over the instances) while a probe posts one stamped reading
every 50 ms through nginx and /live viewers on *every* instance time its
arrival: the end-to-end latency of a reading accepted on any instance and
seen on any other. Also one single process without Redis, for reference.

Everything runs on this machine's cores, the load generator included, so on
two cores more instances share the same CPU: expect the stream, the message
queue and the extra processes to cost more than they buy.

Run: python bench/cluster.py [seconds per size]
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import QUIET, ClientPool, percentile, stamp, wrk  # noqa: E402
from testkit.cluster_harness import Cluster  # noqa: E402
from testkit.cluster_services import NginxProxy, RedisServer  # noqa: E402
from testkit.server import ServerProcess  # noqa: E402

BATCH = 100
# /live viewers per instance, and the probe's pace.
VIEWERS_PER_INSTANCE = 5
PROBE_EVERY_S = 0.05


def _probe(url: str, seconds: float) -> int:
    session = requests.Session()
    sent, deadline = 0, time.time() + seconds
    while time.time() < deadline:
        sent += 1
        try:
            session.post(url + "/api/sensors", timeout=5,
                         json=[{"sensor_id": f"probe-{sent % 20}", "value": float(sent),
                                "timestamp": stamp(time.time())}])
        except requests.RequestException:
            pass
        time.sleep(PROBE_EVERY_S)
    return sent


def measure(front: str, instance_urls: list[str], seconds: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    body = folder / "batch.json"
    body.write_text(json.dumps([{"sensor_id": f"load-{i % 1000}", "value": (i % 97) / 3, "metric": "flow"}
                                for i in range(BATCH)]))
    pools = [ClientPool(url, VIEWERS_PER_INSTANCE, hold_s=seconds + 15, watch_prefix="probe-")
             for url in instance_urls]
    probe = threading.Thread(target=_probe, args=(front, seconds), daemon=True)
    probe.start()
    load = wrk(front + "/api/sensors", body, seconds, connections=8)
    probe.join()
    latencies = [v for pool in pools for v in pool.latencies()]
    return {"readings_per_s": load["requests_per_s"] * BATCH, "non_2xx": load["non_2xx"],
            "e2e_p50_ms": percentile(latencies, 0.50), "e2e_p99_ms": percentile(latencies, 0.99),
            "samples": len(latencies)}


def run_cluster(n: int, seconds: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{n}-"))
    (folder / "redis").mkdir()
    (folder / "nginx").mkdir()
    redis = RedisServer(folder / "redis").start()
    group = Cluster(folder, redis.url, None, n=n, SIMULATOR="off").start()
    proxy = NginxProxy(folder / "nginx", [f"127.0.0.1:{s.port}" for s in group.servers.values()]).start()
    try:
        return measure(proxy.url, group.urls(), seconds)
    finally:
        proxy.stop()
        group.stop()
        redis.stop()


def run_single(seconds: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-single-"))
    (folder / "nginx").mkdir()
    server = ServerProcess(folder, **QUIET).start()
    proxy = NginxProxy(folder / "nginx", [f"127.0.0.1:{server.port}"]).start()
    try:
        return measure(proxy.url, [server.url], seconds)
    finally:
        proxy.stop()
        server.stop()


def main(seconds: int = 10) -> dict:
    results = {"1 process, no Redis": run_single(seconds)}
    for n in (1, 2, 3):
        results[f"{n} instance{'s' if n > 1 else ''} + Redis"] = run_cluster(n, seconds)
    print(f"\n{'setup':<22} {'readings/s':>11} {'e2e p50 ms':>11} {'e2e p99 ms':>11} {'samples':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:<22} {r['readings_per_s']:>11.0f} {r['e2e_p50_ms']:>11.1f} {r['e2e_p99_ms']:>11.1f} "
              f"{r['samples']:>8} {r['non_2xx']:>8}")
    return results


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
