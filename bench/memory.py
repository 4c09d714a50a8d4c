"""Memory: RSS per 10,000 sensors, and RSS growth across a soak (it must be flat).

1. 10,000 distinct sensors, each given a full ring of recent points
   (RECENT_POINTS readings), in batches of 500; RSS before and after.
2. Soak: history in InfluxDB, the simulator on, plus 1,000 readings/s over
   HTTP across 2,000 sensors and 20 passive /live clients, for `soak_s`; RSS
   sampled every 10 s.
   Growth is the slope over the second half (the first fills rings and caches).
Run: python bench/memory.py [soak seconds]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Influx, PassivePool, rss_mb, start_server  # noqa: E402

RING = 120


def per_10k_sensors() -> dict:
    server = start_server(RECENT_POINTS=str(RING))
    try:
        session = requests.Session()
        time.sleep(1)
        before = rss_mb(server.process.pid)
        for round_ in range(RING):
            for start in range(0, 10_000, 500):
                batch = [{"sensor_id": f"mem-{i}", "value": float(round_ + i % 7)} for i in range(start, start + 500)]
                assert session.post(server.url + "/api/sensors", json=batch, timeout=30).status_code == 202
        time.sleep(2)
        after = rss_mb(server.process.pid)
    finally:
        server.stop()
    return {"rss_before_mb": before, "rss_after_mb": after, "per_10k_sensors_mb": after - before,
            "readings": 10_000 * RING}


def soak(seconds: float = 300) -> dict:
    influx = Influx()   # history in InfluxDB, as in production: the server's own memory must be flat
    server = start_server(SIMULATOR="on", SIMULATOR_EVENTS_PER_HOUR="30", **influx.env())
    samples = []
    try:
        passive = PassivePool(server.url, 20, hold_s=seconds + 20)
        session = requests.Session()
        started = time.time()
        next_sample = started
        k = 0
        while time.time() - started < seconds:
            batch = [{"sensor_id": f"soak-{(k * 100 + i) % 2000}", "value": float(k % 500 + i)} for i in range(100)]
            session.post(server.url + "/api/sensors", json=batch, timeout=30)
            k += 1
            if time.time() >= next_sample:
                samples.append((time.time() - started, rss_mb(server.process.pid)))
                next_sample += 10
            time.sleep(0.1)   # 100 readings every 0.1 s: 1,000 readings/s
        passive.close()
    finally:
        server.stop()
        influx.close()
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = ((half[-1][1] - half[0][1]) / ((half[-1][0] - half[0][0]) / 60)) if len(half) > 1 else float("nan")
    return {"seconds": seconds, "rss_start_mb": samples[0][1], "rss_mid_mb": half[0][1] if half else float("nan"),
            "rss_end_mb": samples[-1][1], "growth_mb_per_min_second_half": slope, "readings": k * 100}


if __name__ == "__main__":
    m = per_10k_sensors()
    print(f"10,000 sensors x {RING} points ({m['readings']} readings): RSS {m['rss_before_mb']:.0f} -> "
          f"{m['rss_after_mb']:.0f} MB, {m['per_10k_sensors_mb']:.0f} MB per 10k sensors")
    s = soak(float(sys.argv[1]) if len(sys.argv) > 1 else 300)
    print(f"soak {s['seconds']:.0f} s, {s['readings']} readings: RSS {s['rss_start_mb']:.0f} -> {s['rss_mid_mb']:.0f} "
          f"-> {s['rss_end_mb']:.0f} MB; second-half growth {s['growth_mb_per_min_second_half']:.2f} MB/min")
