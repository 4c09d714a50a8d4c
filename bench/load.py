"""The latency harness: cheap senders and probes in processes of their own.

The first latency bench used `requests` senders and python-socketio probes;
on these 2 cores they spent about as much CPU as the server they measured,
so its p99 measured the harness as much as the server (the ceiling relay,
run with the same harness, showed it). Here:
- senders keep one `http.client` connection each and pace themselves to the
  target rate, each reading stamped with the sender's clock;
- probes are minimal Engine.IO websocket clients that pick the benchmark's
  readings out of each frame with a regex, noting the time of receipt;
- the rest of the audience are passive connections (bench/common.py).
Every process is bounded in time and talks to 127.0.0.1 only.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# -- senders -------------------------------------------------------------------------

def _sender(url: str, rate: float, seconds: float, threads: int, prefix: str, ready, go, start_at, sent):
    import http.client
    import json
    import threading

    parsed = urlparse(url)
    counts = []
    # Start together, once every sender has spawned (slow on a loaded machine).
    ready.put(os.getpid())
    go.wait(timeout=120)
    start_at = start_at.value
    cpu_before = time.process_time()   # the load's own CPU, not the imports'

    def loop(offset: int):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        per_thread = rate / threads
        due = start_at
        end = start_at + seconds
        k = 0
        while True:
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            if time.time() >= end:
                break
            body = json.dumps({"sensor_id": f"{prefix}{os.getpid()}-{offset}-{k % 100}",
                               "value": float(k), "timestamp": stamp(time.time())})
            conn.request("POST", "/api/ingest", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
            k += 1
            due += 1 / per_thread
        counts.append(k)
        conn.close()

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sent.put((sum(counts), time.process_time() - cpu_before))


class Senders:
    """`rate` readings/s for `seconds`, from `processes` x `threads` keep-alive connections."""

    def __init__(self, url: str, rate: float, seconds: float, prefix: str,
                 processes: int = 2, threads: int = 4, delay_s: float = 1.0):
        # fork, not spawn: a spawned child re-imports the main module (all of the
        # app, for bench/run_all.py), which takes many seconds on a loaded machine.
        ctx = mp.get_context("fork")
        self.sent, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        start_at = ctx.Value("d", 0.0)
        self.seconds = seconds
        self.procs = [ctx.Process(target=_sender, daemon=True,
                                  args=(url, rate / processes, seconds, threads, prefix, ready, go,
                                        start_at, self.sent)) for _ in range(processes)]
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            ready.get(timeout=120)
        self.start_at = start_at.value = time.time() + delay_s
        go.set()

    def join(self) -> int:
        reports = [self.sent.get(timeout=self.seconds + 60) for _ in self.procs]
        for proc in self.procs:
            proc.join(timeout=10)
        self.cpu_s = sum(cpu for _, cpu in reports)   # the senders' own CPU: the harness's cost
        return sum(count for count, _ in reports)


# -- probes --------------------------------------------------------------------------

_READING = re.compile(rb'"sensor_id":"(%s[^"]*)"[^{}]*?"timestamp":"([^"]+)"')


def _probe_clients(host: str, port: int, count: int, prefix: str, ready, results, hold_s: float, stop):
    """`count` websocket clients on /live; latency of every `prefix` reading they receive."""
    import base64
    import selectors
    import socket
    import struct

    pattern = re.compile(_READING.pattern % re.escape(prefix.encode()))
    event = b'42/live,["sensor_update"'

    def masked(text: bytes) -> bytes:
        mask = os.urandom(4)
        return bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))

    selector = selectors.DefaultSelector()
    buffers: dict = {}
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        sock.sendall(masked(b"40/live,"))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        buffers[sock] = head.split(b"\r\n\r\n", 1)[1]
    ready.put(len(buffers))
    cpu_before = time.process_time()
    latencies: list[float] = []
    parse_ts = datetime.fromisoformat
    end = time.time() + hold_s
    while time.time() < end and not stop.is_set():
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            now = time.time()
            if not data:
                selector.unregister(sock)
                continue
            buf = buffers[sock] + data
            while len(buf) >= 2:
                length, offset = buf[1] & 0x7F, 2
                if length == 126:
                    if len(buf) < 4:
                        break
                    length, offset = struct.unpack(">H", buf[2:4])[0], 4
                elif length == 127:
                    if len(buf) < 10:
                        break
                    length, offset = struct.unpack(">Q", buf[2:10])[0], 10
                if len(buf) < offset + length:
                    break
                payload = buf[offset:offset + length]
                if payload == b"2":
                    sock.sendall(masked(b"3"))
                elif payload.startswith(event):
                    for _, ts in pattern.findall(payload):
                        sent = parse_ts(ts.decode().replace("Z", "+00:00")).timestamp()
                        latencies.append((now - sent) * 1000)
                buf = buf[offset + length:]
            buffers[sock] = buf
    for sock in buffers:
        sock.close()
    results.put((latencies, time.process_time() - cpu_before))


class ProbePool:
    """Probes that listen until `latencies()` is called (at most `hold_s`)."""

    def __init__(self, url: str, count: int, prefix: str, hold_s: float):
        parsed = urlparse(url)
        ctx = mp.get_context("fork")
        self.ready, self.results, self.stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.proc = ctx.Process(target=_probe_clients, daemon=True,
                                args=(parsed.hostname, parsed.port, count, prefix, self.ready,
                                      self.results, hold_s, self.stop))
        self.proc.start()
        self.connected = self.ready.get(timeout=60)

    def latencies(self, drain_s: float = 2.0) -> list[float]:
        time.sleep(drain_s)          # the last frames are still on their way
        self.stop.set()
        values, self.cpu_s = self.results.get(timeout=120)
        self.proc.join(timeout=10)
        return values


# -- wrk -------------------------------------------------------------------------------

def wrk_post(url: str, body: str, seconds: int, connections: int = 8, threads: int = 2,
             headers: dict | None = None) -> dict:
    """Requests/s, latency and non-2xx count from wrk (Debian's package) POSTing `body`."""
    import json
    import subprocess
    import tempfile

    from tests.services import ensure_installed

    binary = ensure_installed("wrk", "wrk")
    folder = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    (folder / "body.json").write_text(body)
    lines = [f'local f = io.open("{folder / "body.json"}", "r"); local body = f:read("*a"); f:close()',
             'wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items()]
    (folder / "post.lua").write_text("\n".join(lines) + "\n")
    out = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s",
                          str(folder / "post.lua"), url], capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    rate = float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[1])
    errors = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    total = next((int(line.split()[0]) for line in out.splitlines() if " requests in " in line), 0)
    return {"requests_per_s": rate, "non_2xx": errors, "requests": total}


def py_spy(pid: int, seconds: float, svg: Path):
    """Start py-spy recording a flame graph of `pid` for `seconds` into `svg`; returns the process."""
    import shutil
    import subprocess

    binary = shutil.which("py-spy")
    if binary is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    svg.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([binary, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--rate", "100", "--nonblocking", "--format", "flamegraph", "-o", str(svg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
