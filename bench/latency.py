"""End-to-end latency: a device's publish (HTTP or MQTT) to receipt by every /live client.

Each reading carries the sender's clock as its timestamp. PROBES full
python-socketio clients note when each reading arrives; the rest of the
audience are passive websocket connections that join /live and discard what
they get (Python clients decoding every frame would saturate these 2 cores
themselves). Senders pace themselves to the target rate from other processes. Run: python bench/latency.py [rate] [clients] [http|mqtt]
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ClientPool, Influx, PassivePool, percentile, stamp, start_server  # noqa: E402

PREFIX = "lat-"
PROBES = 10


def _http_sender(url: str, rate: float, seconds: float, threads: int):
    import requests

    def loop(offset: int):
        session = requests.Session()
        per_thread = rate / threads
        due = time.time()
        end = due + seconds
        k = 0
        while time.time() < end:
            body = {"sensor_id": f"{PREFIX}{offset}-{k % 200}", "value": float(k), "timestamp": stamp(time.time())}
            session.post(url + "/api/ingest", json=body, timeout=10)
            k += 1
            due += 1 / per_thread
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _mqtt_sender(port: int, rate: float, seconds: float):
    import paho.mqtt.client as mqtt
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sender")
    client.connect("127.0.0.1", port)
    client.loop_start()
    due = time.time()
    end = due + seconds
    k = 0
    while time.time() < end:
        client.publish(f"water/sensors/{PREFIX}m-{k % 200}",
                       json.dumps({"value": float(k), "timestamp": stamp(time.time())}), qos=1)
        k += 1
        due += 1 / rate
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
    time.sleep(1)
    client.loop_stop()


def run(rate: int, clients: int, transport: str = "http", seconds: float = 15,
        interval_ms: int | None = None) -> dict:
    ctx = mp.get_context("spawn")
    influx = Influx()
    broker = None
    env = influx.env()
    if interval_ms is not None:
        env["BROADCAST_INTERVAL_MS"] = str(interval_ms)
    if transport == "mqtt":
        import tempfile

        from tests.services import MosquittoBroker
        broker = MosquittoBroker(Path(tempfile.mkdtemp(prefix="bench-mqtt-"))).start()
        env.update(MQTT_URL=broker.url, MQTT_CLIENT_ID="bhs-latency")
    server = start_server(**env)
    try:
        passive = PassivePool(server.url, clients - PROBES, hold_s=seconds + 15)
        pool = ClientPool(server.url, PROBES, hold_s=seconds + 8, watch_prefix=PREFIX)
        if transport == "http":
            senders = [ctx.Process(target=_http_sender, args=(server.url, rate / 2, seconds, 4)) for _ in range(2)]
        else:
            senders = [ctx.Process(target=_mqtt_sender, args=(broker.port, rate, seconds))]
        for s in senders:
            s.start()
        for s in senders:
            s.join(timeout=seconds + 60)
        values = pool.latencies()
        passive.close()
    finally:
        server.stop()
        influx.close()
        if broker:
            broker.stop()
    return {"transport": transport, "rate": rate, "clients": pool.connected + passive.connected,
            "samples": len(values),
            "interval_ms": interval_ms or 50,
            "p50": percentile(values, 0.50), "p95": percentile(values, 0.95), "p99": percentile(values, 0.99)}


if __name__ == "__main__":
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    transport = sys.argv[3] if len(sys.argv) > 3 else "http"
    interval = int(sys.argv[4]) if len(sys.argv) > 4 else None
    r = run(rate, clients, transport, interval_ms=interval)
    print(f"{r['transport']} {r['rate']}/s, {r['clients']} clients, frame interval {r['interval_ms']} ms, "
          f"{r['samples']} samples: "
          f"p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, p99 {r['p99']:.1f} ms")
