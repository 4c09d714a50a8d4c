"""History write throughput: our InfluxDB repository against raw line-protocol POSTs.

Starts a real influxd (Debian's 1.6.7, behind the tests' v2 write bridge in a
process of its own) on loopback, then under eventlet (as the server runs) writes the same points:
  1. raw: pre-built line protocol POSTed in batches of 5,000 (the ceiling);
  2. ours: records through InfluxHistory.write_readings, until all are written.
Prints points/s and the ratio. Run: python bench/influx_write.py [points]
"""
import eventlet

eventlet.monkey_patch()

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.adapters.influx import InfluxHistory  # noqa: E402
from app.adapters.spool import DiskSpool  # noqa: E402
from testkit.ports import free_port  # noqa: E402
from testkit.readings import reading  # noqa: E402
from testkit.services import InfluxServer, wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

POINTS = int(sys.argv[1]) if len(sys.argv) > 1 and __name__ == "__main__" else 100_000
BATCH = 5000
SENSORS = 145


def records(offset_s: float, points: int = POINTS):
    base = time.time() - 3600 + offset_s
    return [reading(f"S{i % SENSORS:03d}.flow", 100.0 + (i % 97) / 7, base + i * 1e-3, metric="flow",
                    node_id=f"N{i % SENSORS:03d}", zone="Z_SOUTH") for i in range(points)]


def count(server, db):
    reply = requests.post(server.url + "/query", params={"db": db, "q": 'SELECT count("value") FROM "sensor_reading"'})
    series = reply.json()["results"][0].get("series")
    return series[0]["values"][0][1] if series else 0


def run(points: int = POINTS) -> dict:
    """Points/s of raw POSTs (the ceiling) and of our repository, same points, same influxd."""
    folder = Path(tempfile.mkdtemp())
    server = InfluxServer(folder).start()
    # The bridge runs in its own process, so neither method pays for it here.
    port = free_port()
    bridge = subprocess.Popen([sys.executable, "-m", "testkit.services", "bridge", server.url, str(port)], cwd=ROOT)
    bridge_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(bridge_url + "/ping", timeout=1).status_code == 204, 10, "bridge")
    try:
        for db in ("raw", "ours"):
            requests.post(server.url + "/query", params={"q": f'CREATE DATABASE "{db}"'})

        # 1. Raw line protocol (the ceiling): same lines our adapter would build.
        lines = [f"sensor_reading,metric=flow,node_id={r.node_id},sensor_id={r.sensor_id},source=sensor,zone=Z_SOUTH "
                 f"value={r.value!r} {int(r.ts * 1e9)}" for r in records(0, points)]
        session = requests.Session()
        started = time.perf_counter()
        for k in range(0, len(lines), BATCH):
            reply = session.post(bridge_url + "/api/v2/write", params={"bucket": "raw", "precision": "ns"},
                                 data="\n".join(lines[k:k + BATCH]).encode())
            assert reply.status_code == 204, reply.text
        raw_rate = points / (time.perf_counter() - started)
        assert count(server, "raw") == points

        # 2. Through the repository, as the ingest path calls it.
        history = InfluxHistory(bridge_url, "bench", "-", "ours", DiskSpool(folder / "spool", 1 << 30),
                                eventlet.spawn, eventlet.sleep)
        history.start()
        data = records(1, points)
        started = time.perf_counter()
        for k in range(0, len(data), 500):          # as 500-reading ingest batches arrive
            history.write_readings(data[k:k + 500])
            eventlet.sleep(0)
        while history.status()["written"] < points:
            eventlet.sleep(0.005)
        ours_rate = points / (time.perf_counter() - started)
        history.stop()
        assert count(server, "ours") == points

    finally:
        bridge.terminate()
        server.stop()
    return {"points": points, "raw_points_per_s": raw_rate, "ours_points_per_s": ours_rate,
            "ratio": ours_rate / raw_rate}


def main():
    r = run(POINTS)
    print(f"InfluxDB write throughput, {r['points']} points, influxd 1.6.7 via the v2 bridge, eventlet")
    print(f"{'method':<44} {'points/s':>10}")
    print(f"{'raw line-protocol POSTs of 5000 (ceiling)':<44} {r['raw_points_per_s']:>10.0f}")
    print(f"{'InfluxHistory (pre-joined batches, WriteApi)':<44} {r['ours_points_per_s']:>10.0f}")
    print(f"ratio: {r['ratio']:.0%} of raw (target >= 50%)")


if __name__ == "__main__":
    main()
