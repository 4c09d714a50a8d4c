"""A control's preview (POST /api/control/preview): how long it takes, and whether the
server keeps answering while previews are solved.

Starts a server with the simulator (bundled network, or wntr's Net6 with --net6),
waits for its first plan, then times previews back to back (isolate a source, stop
a pump, set a valve, in turn) while another client times GET /api/health. The
health latency with and without previews running says how long a preview holds
the event loop. Bounded: PREVIEWS requests, 127.0.0.1 only.
Run: python bench/control_preview.py [--net6] [--quick]   (--quick: half the phases)
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, start_server  # noqa: E402
from testkit.server import OPERATOR_TOKEN  # noqa: E402

# Previews are sent back to back for one health phase, at most this many.
PREVIEWS = 300
HEALTH_PHASE_S = 8.0
PLAN_WAIT_S = 120.0
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def net6() -> Path:
    import wntr
    return Path(wntr.__file__).parent / "library" / "networks" / "Net6.inp"


def bodies(network: dict) -> list[dict]:
    """An isolation of the biggest source, a pump stop and a valve setting, where the network has them."""
    sources = sorted((n for n in network["nodes"] if n["kind"] == "source"), key=lambda n: -n.get("capacity", 0))
    pumps = [link["id"] for link in network["links"] if link["kind"] == "pump"]
    valves = [link["id"] for link in network["links"] if link["kind"] == "valve"]
    out = [{"action": "isolate", "target": sources[0]["id"]}]
    if pumps:
        out.append({"action": "set_pump", "target": pumps[0], "value": "off"})
    if valves:
        out.append({"action": "set_valve", "target": valves[0], "value": 40})
    return out


def health_latencies(url: str, seconds: float) -> list[float]:
    times, end = [], time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < end:
            started = time.perf_counter()
            session.get(url + "/api/health", timeout=10)
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    return times


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):.1f} ms, p95 {percentile(values, 0.95):.1f} ms, "
            f"max {max(values):.1f} ms (n={len(values)})")


def main() -> None:
    quick, use_net6 = "--quick" in sys.argv, "--net6" in sys.argv
    phase_s = HEALTH_PHASE_S / 2 if quick else HEALTH_PHASE_S
    env = {"SIMULATOR": "on"}
    if use_net6:
        env["NETWORK_FILE"] = str(net6())
    server = start_server(**env)
    try:
        url = server.url
        deadline = time.monotonic() + PLAN_WAIT_S
        while requests.get(url + "/api/routing", timeout=10).json().get("status") != "optimal":
            assert time.monotonic() < deadline, "no plan within PLAN_WAIT_S"
            time.sleep(0.5)
        network = requests.get(url + "/api/network", timeout=30).json()
        cases = bodies(network)
        idle = health_latencies(url, phase_s)

        latencies, solves, sentences = [], [], {}
        busy: list[float] = []
        watcher = threading.Thread(target=lambda: busy.extend(health_latencies(url, phase_s)))
        watcher.start()
        with requests.Session() as session:
            i = 0
            while watcher.is_alive() and i < PREVIEWS:
                i += 1
                body = cases[i % len(cases)]
                started = time.perf_counter()
                reply = session.post(url + "/api/control/preview", json=body, headers=AUTH, timeout=60)
                latencies.append((time.perf_counter() - started) * 1000)
                reply.raise_for_status()
                preview = reply.json()["preview"]
                if preview.get("solve_ms") is not None:
                    solves.append(preview["solve_ms"])
                sentences.setdefault(body["action"], preview["sentence"])
        watcher.join()
        name = "Net6" if use_net6 else "bundled"
        print(f"{name} network: {len(network['nodes'])} nodes, {len(network['links'])} links")
        print(f"preview round trip: {summary(latencies)}")
        print(f"preview solve (server's solve_ms): {summary(solves)}")
        print(f"GET /api/health, idle: {summary(idle)}")
        print(f"GET /api/health, previews running: {summary(busy)}")
        for action, sentence in sentences.items():
            print(f"  {action}: {sentence}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
