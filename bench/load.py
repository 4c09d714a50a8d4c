"""The latency harness: cheap senders and probes in processes of their own.

The first latency bench used `requests` senders and python-socketio probes;
on these 2 cores they spent about as much CPU as the server they measured,
so its p99 measured the harness as much as the server (the ceiling relay,
run with the same harness, showed it). Here:
- each sender process is one thread driving a few keep-alive `http.client`
  connections through a selector, paced to the target rate; a reading is
  stamped with the sender's clock immediately before its request is written
  (with four threads a process, a stamped reading could wait for the GIL);
- probes are minimal Engine.IO websocket clients that pick the benchmark's
  readings out of each frame with a regex, noting the time of receipt; they
  open one at a time, so a bench can place them among the passive clients in
  the room's send order;
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
# Distinct sensors each sender process reports for, in turn.
SENSORS_PER_SENDER = 100


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# -- senders -------------------------------------------------------------------------

def _sender(url: str, rate: float, seconds: float, connections: int, prefix: str, ready, go, start_at, sent):
    """One thread driving `connections` keep-alive connections through a selector.

    The first harness ran four sender threads a process: a thread stamped its
    reading, then could wait for the GIL (held by another thread parsing its
    reply) before the request left, and that wait counted as latency. Here
    one thread stamps a reading immediately before its request is written,
    on whichever connection is free; replies are read as they come.
    """
    import http.client
    import selectors
    import socket
    from collections import deque

    parsed = urlparse(url)
    conns = []
    for _ in range(connections):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(conn)
    selector = selectors.DefaultSelector()
    for conn in conns:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    idle = deque(conns)
    busy: dict = {}                 # connection -> (sensor id, value, stamped at)
    done: list[tuple] = []          # (sensor id, value, stamped at, answered at)
    head = {"Content-Type": "application/json"}
    pid = os.getpid()
    # Every sensor's first reading before the clock starts: a sensor's first
    # reading is a one-off (new state in the store, analysis and history),
    # not the steady load being measured. Receipts stamped before the start
    # are left out (bench/latency.py).
    for k in range(SENSORS_PER_SENDER):
        conns[0].request("POST", "/api/ingest", '{"sensor_id": "%s%d-%d", "value": %r, "timestamp": "%s"}'
                         % (prefix, pid, k, float(-1 - k), stamp(time.time())), head)
        conns[0].getresponse().read()
    # Start together, once every sender has spawned (slow on a loaded machine).
    ready.put(pid)
    go.wait(timeout=120)
    start = start_at.value
    cpu_before = time.process_time()   # the load's own CPU, not the imports'
    period = 1 / rate
    due, end, k = start, start + seconds, 0

    def answer(conn) -> None:
        conn.getresponse().read()
        sid, value, stamped = busy.pop(conn)
        done.append((sid, value, stamped, time.time()))
        idle.append(conn)

    while True:
        now = time.time()
        if now >= end:
            break
        if idle and now >= due:
            conn = idle.popleft()
            sid, value = f"{prefix}{pid}-{k % SENSORS_PER_SENDER}", float(k)
            stamped = time.time()
            conn.request("POST", "/api/ingest", '{"sensor_id": "%s", "value": %r, "timestamp": "%s"}'
                         % (sid, value, stamp(stamped)), head)
            busy[conn] = (sid, value, stamped)
            k += 1
            due += period
            continue
        wait = min(due - now, end - now) if idle else end - now
        for key, _ in selector.select(timeout=max(0.0, wait)):
            answer(key.data)
    drain_until = time.time() + 10
    while busy and time.time() < drain_until:
        for key, _ in selector.select(timeout=1):
            if key.data in busy:
                answer(key.data)
    for conn in conns:
        conn.close()
    sent.put((k, time.process_time() - cpu_before, done))


class Senders:
    """`rate` readings/s for `seconds`, from `processes` single-threaded senders of
    `connections` keep-alive connections each."""

    def __init__(self, url: str, rate: float, seconds: float, prefix: str,
                 processes: int = 2, connections: int = 4, delay_s: float = 1.0, cpus: set[int] | None = None,
                 nice: int | None = None):
        # fork, not spawn: a spawned child re-imports the main module (all of the
        # app, for bench/run_all.py), which takes many seconds on a loaded machine.
        ctx = mp.get_context("fork")
        self.sent, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        start_at = ctx.Value("d", 0.0)
        self.seconds = seconds
        self.procs = [ctx.Process(target=_sender, daemon=True,
                                  args=(url, rate / processes, seconds, connections, prefix, ready, go,
                                        start_at, self.sent)) for _ in range(processes)]
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            pin(ready.get(timeout=120), cpus, nice)
        self.start_at = start_at.value = time.time() + delay_s
        go.set()

    def join(self) -> int:
        reports = [self.sent.get(timeout=self.seconds + 60) for _ in self.procs]
        for proc in self.procs:
            proc.join(timeout=10)
        self.cpu_s = sum(cpu for _, cpu, _ in reports)   # the senders' own CPU: the harness's cost
        # (sensor id, value, stamped at, answered at) of every reading sent.
        self.requests = [row for _, _, rows in reports for row in rows]
        return sum(count for count, _, _ in reports)


def pin(pid: int, cpus: set[int] | None, nice: int | None = None) -> None:
    """Keep every thread of `pid` on `cpus` (None: leave it to the scheduler) and,
    with `nice`, at that niceness (Linux keeps both per thread)."""
    if not cpus and nice is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if cpus:
                os.sched_setaffinity(int(task.name), cpus)
            if nice is not None:
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except OSError:            # a thread that just ended
            pass


# -- minimal Socket.IO websocket clients ---------------------------------------------

def masked(text: bytes) -> bytes:
    """A client's (masked) websocket text frame."""
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))


def split_frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """The whole websocket frames' payloads at the start of `buf`, and the rest."""
    import struct

    payloads = []
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
        payloads.append(buf[offset:offset + length])
        buf = buf[offset + length:]
    return payloads, buf


def open_live(host: str, port: int):
    """A websocket on /live, returned (non-blocking, with any bytes after the
    handshake) once the server has answered the namespace's connect: by then
    its connect handler has run and the client sits in the room, so clients
    opened one after another take their places in the room's send order."""
    import base64
    import socket

    sock = socket.create_connection((host, port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        sock.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    sock.sendall(masked(b"40/live,"))
    buf = head.split(b"\r\n\r\n", 1)[1]
    while True:
        payloads, rest = split_frames(buf)
        if any(p.startswith(b"40/live,") for p in payloads):
            break
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed before joining /live")
        buf += chunk
    sock.setblocking(False)
    return sock, rest


# -- probes --------------------------------------------------------------------------

_READING = re.compile(rb'"sensor_id":"(%s[^"]*)"[^{}]*?"timestamp":"([^"]+)"')


def _probe_clients(host: str, port: int, commands, prefix: str, ready, results, hold_s: float, stop,
                   trace: bool):
    """Websocket clients on /live, opened one batch per command (so that they
    can sit between passive clients in the room's send order); the latency of
    every `prefix` reading they receive, with the probe's index.

    With `trace`, each frame is parsed whole and the server's trace stamps
    (bench/trace.py) are kept with the receipt time."""
    import json
    import selectors

    pattern = re.compile(_READING.pattern % re.escape(prefix.encode()))
    event = b'42/live,["sensor_update"'
    selector = selectors.DefaultSelector()
    buffers: dict = {}
    index: dict = {}
    while (count := commands.get(timeout=300)) is not None:
        for _ in range(count):
            sock, rest = open_live(host, port)
            selector.register(sock, selectors.EVENT_READ)
            buffers[sock] = rest
            index[sock] = len(index)
        ready.put(count)
    cpu_before = time.process_time()
    # (probe, latency ms, received) or with `trace` (probe, latency ms, sensor id, value, received, in, pub, emit)
    samples: list[tuple] = []
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
            probe = index[sock]
            payloads, buffers[sock] = split_frames(buffers[sock] + data)
            for payload in payloads:
                if payload == b"2":
                    sock.sendall(masked(b"3"))
                elif payload.startswith(event):
                    if trace:
                        for r in json.loads(payload[len(b"42/live,"):])[1]["readings"]:
                            if r["sensor_id"].startswith(prefix):
                                sent = parse_ts(r["timestamp"].replace("Z", "+00:00")).timestamp()
                                samples.append((probe, (now - sent) * 1000, r["sensor_id"], r["value"], now,
                                                r.get("trace_in"), r.get("trace_pub"), r.get("trace_emit")))
                    else:
                        for _, ts in pattern.findall(payload):
                            sent = parse_ts(ts.decode().replace("Z", "+00:00")).timestamp()
                            samples.append((probe, (now - sent) * 1000, now))
    for sock in buffers:
        sock.close()
    results.put((samples, time.process_time() - cpu_before))


class ProbePool:
    """Probes that listen until `latencies()` is called (at most `hold_s`).

    `count` probes open at once; or pass 0 and `open()` them in steps between
    passive clients, then `go()`."""

    def __init__(self, url: str, count: int, prefix: str, hold_s: float, trace: bool = False,
                 cpus: set[int] | None = None, nice: int | None = None):
        parsed = urlparse(url)
        ctx = mp.get_context("fork")
        self.ready, self.results, self.stop, self.commands = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_probe_clients, daemon=True,
                                args=(parsed.hostname, parsed.port, self.commands, prefix, self.ready,
                                      self.results, hold_s, self.stop, trace))
        self.proc.start()
        pin(self.proc.pid, cpus, nice)
        self.connected = 0
        if count:
            self.open(count)
            self.go()

    def open(self, count: int) -> None:
        self.commands.put(count)
        self.connected += self.ready.get(timeout=60)

    def go(self) -> None:
        self.commands.put(None)

    def latencies(self, drain_s: float = 2.0, since: float = 0.0) -> list[float]:
        """Every receipt's latency (ms) of a reading stamped at `since` or later."""
        time.sleep(drain_s)          # the last frames are still on their way
        self.stop.set()
        samples, self.cpu_s = self.results.get(timeout=120)
        self.proc.join(timeout=10)
        # The receipt time is the last field of an untraced sample, the fifth of a traced one.
        self.samples = [s for s in samples if (s[4] if len(s) > 3 else s[2]) - s[1] / 1000 >= since]
        return [s[1] for s in self.samples]


# -- wrk -------------------------------------------------------------------------------

def wrk_post(url: str, body: str, seconds: int, connections: int = 8, threads: int = 2,
             headers: dict | None = None) -> dict:
    """Requests/s, latency and non-2xx count from wrk (Debian's package) POSTing `body`."""
    import json
    import subprocess
    import tempfile

    from testkit.services import ensure_installed

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
