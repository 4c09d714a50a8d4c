"""Shared pieces of the benchmarks: servers, RSS, percentiles, pools of /live clients.

Every load is bounded in count and time and goes to 127.0.0.1 only.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testkit.ports import free_port  # noqa: E402
from testkit.server import ServerProcess  # noqa: E402
from testkit.services import InfluxServer, ensure_installed, wait_until  # noqa: E402

QUIET = {"LOG_LEVEL": "WARNING", "SIMULATOR": "off", "INGEST_RATE_LIMIT": "1000000 per second"}


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Influx:
    """influxd plus the v2 write bridge in its own process (the bridge must not
    share a CPU budget with what is measured)."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="bench-influx-"))
        self.server = InfluxServer(self.folder).start()
        port = free_port()
        self.bridge = subprocess.Popen([sys.executable, "-m", "testkit.services", "bridge", self.server.url, str(port)],
                                       cwd=ROOT)
        self.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(self.url + "/ping", timeout=1).status_code == 204, 10, "bridge")
        requests.post(self.server.url + "/query", params={"q": 'CREATE DATABASE "bench"'})

    def env(self) -> dict:
        return {"INFLUXDB_URL": self.url, "INFLUXDB_TOKEN": "bench", "INFLUXDB_BUCKET": "bench"}

    def close(self):
        self.bridge.terminate()
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server(**env) -> ServerProcess:
    import testkit.server
    testkit.server.START_TIMEOUT_S = 120   # a loaded shared machine starts servers slowly
    folder = Path(tempfile.mkdtemp(prefix="bench-server-"))
    return ServerProcess(folder, **{**QUIET, **env}).start()


def wrk(url: str, body_file: Path, seconds: int, connections: int = 8, threads: int = 2) -> dict:
    """Requests/s and non-2xx count from wrk (Debian's package, installed if missing)."""
    binary = ensure_installed("wrk", "wrk")
    script = body_file.with_suffix(".lua")
    script.write_text('local f = io.open("%s", "r"); local body = f:read("*a"); f:close()\n'
                      'wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"\n'
                      % body_file)
    out = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[1])
    errors = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    return {"requests_per_s": rate, "non_2xx": errors}


# -- pools of /live clients in other processes ----------------------------------------

def _client_pool(url: str, count: int, ready, results, stop_after: float, watch_prefix: str):
    import socketio
    latencies: list[float] = []
    connected = 0
    clients = []

    def on_update(frame):
        now = time.time()
        for r in frame["readings"]:
            if r["sensor_id"].startswith(watch_prefix):
                sent = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
                latencies.append((now - sent) * 1000)

    for _ in range(count):
        client = socketio.Client(reconnection=False,
                                 websocket_extra_options={"skip_utf8_validation": True})
        client.on("sensor_update", on_update, namespace="/live")
        try:
            client.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=20)
            clients.append(client)
            connected += 1
        except Exception:
            pass
    ready.put(connected)
    time.sleep(stop_after)
    results.put(latencies)
    for client in clients:
        try:
            client.disconnect()
        except Exception:
            pass


class ClientPool:
    """`total` /live clients spread over processes of at most `per_process`."""

    def __init__(self, url: str, total: int, hold_s: float, watch_prefix: str, per_process: int = 100):
        ctx = mp.get_context("spawn")
        self.ready, self.results = ctx.Queue(), ctx.Queue()
        sizes = [per_process] * (total // per_process) + ([total % per_process] if total % per_process else [])
        self.procs = [ctx.Process(target=_client_pool, daemon=True,
                                  args=(url, n, self.ready, self.results, hold_s, watch_prefix)) for n in sizes]
        started = time.time()
        for proc in self.procs:
            proc.start()
        self.connected = sum(self.ready.get(timeout=120) for _ in self.procs)
        self.connect_s = time.time() - started

    def latencies(self) -> list[float]:
        values: list[float] = []
        for _ in self.procs:
            values += self.results.get(timeout=180)
        for proc in self.procs:
            proc.join(timeout=30)
        return values


def cpu_count() -> int:
    return os.cpu_count() or 1


# -- passive /live clients: real websocket connections that read and discard -------------

def _passive_clients(host: str, port: int, commands, ready, hold_s: float):
    """Hold Socket.IO connections on /live in one thread, opened one batch per
    command until None: a minimal Engine.IO v4 websocket client that joins the
    namespace, answers pings and discards every frame. Cheap enough that the
    server, not the harness, is what is measured; latency is taken by probes."""
    import selectors

    from bench.load import masked, open_live, split_frames

    selector = selectors.DefaultSelector()
    buffers: dict = {}
    while (count := commands.get(timeout=300)) is not None:
        opened = 0
        for _ in range(count):
            try:
                sock, rest = open_live(host, port)
            except OSError:
                continue
            selector.register(sock, selectors.EVENT_READ)
            buffers[sock] = rest
            opened += 1
        ready.put(opened)
    end = time.time() + hold_s
    while time.time() < end:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(sock)
                continue
            payloads, buffers[sock] = split_frames(buffers[sock] + data)
            if b"2" in payloads:
                sock.sendall(masked(b"3"))
    for sock in buffers:
        sock.close()


class PassivePool:
    """`total` passive /live clients in processes of at most `per_process`.

    They open at once, or with `staged=True` only as `open(n)` asks (to place
    them in the room's send order between probes), serving after `go()`."""

    def __init__(self, url: str, total: int, hold_s: float, per_process: int = 250, staged: bool = False,
                 cpus: set[int] | None = None, nice: int | None = None):
        from urllib.parse import urlparse

        from bench.load import pin

        parsed = urlparse(url)
        ctx = mp.get_context("spawn")
        self.ready = ctx.Queue()
        self.sizes = [per_process] * (total // per_process) + ([total % per_process] if total % per_process else [])
        self.commands = [ctx.Queue() for _ in self.sizes]
        self.procs = [ctx.Process(target=_passive_clients, daemon=True,
                                  args=(parsed.hostname, parsed.port, commands, self.ready, hold_s))
                      for commands in self.commands]
        self.room = list(self.sizes)          # connections each process may still open
        self.connected = 0
        started = time.time()
        for proc in self.procs:
            proc.start()
            pin(proc.pid, cpus, nice)
        if not staged:
            self.open(total)
            self.go()
        self.connect_s = time.time() - started

    def open(self, count: int) -> None:
        asked = 0
        for i, room in enumerate(self.room):
            take = min(room, count)
            if take:
                self.commands[i].put(take)
                self.room[i] -= take
                count -= take
                asked += 1
        self.connected += sum(self.ready.get(timeout=120) for _ in range(asked))

    def go(self) -> None:
        for commands in self.commands:
            commands.put(None)

    def close(self):
        for proc in self.procs:
            proc.join(timeout=60)
