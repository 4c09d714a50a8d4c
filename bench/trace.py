"""Latency trace stamps inside a server process, for bench/latency.py --trace.

Each bench reading (sensor id starting with the bench's prefix) is stamped in
the server at two more points, so its trip splits into legs:
- `trace_in`: the WSGI call began (the server has read the request's head);
- `trace_pub`: the reading reached the broadcaster (the request path is done);
- `trace_emit`: the frame carrying it was handed to Socket.IO.
The stamps ride in the frame beside the reading; the probes read them and
add their own receipt time, the senders add theirs (bench/load.py). Python's
collector pauses of the process are noted too (and stalls of its scheduling loop, written to the
file named by BENCH_TRACE_GC). Nothing here runs unless a bench asks for it;
it is imported after the async mode's monkey-patching, so `threading.local`
is per greenthread.
"""
from __future__ import annotations

import gc
import os
import threading
import time

PREFIX = os.environ.get("BENCH_TRACE_PREFIX", "lat-")
STAMPS = ("trace_in", "trace_pub", "trace_emit")
# Collector pauses shorter than this are not worth a line.
GC_NOTED_S = 0.0005

_request = threading.local()


def timed_wsgi(app) -> None:
    """Stamp the start of every request on `app` (outermost WSGI layer)."""
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        _request.t = time.time()
        return inner(environ, start_response)

    app.wsgi_app = wsgi


# The server's reading records are slotted (no room for more keys): their stamps
# wait here, by sensor and time, until the frame is shaped (`take`).
_held: dict[tuple[str, float], dict] = {}


def _stamps(record, new: bool = False) -> dict | None:
    """Where a reading's stamps go: the relay's dict itself, or the held entry of a record."""
    if isinstance(record, dict):
        return record
    key = (record.sensor_id, record.ts)
    return _held.setdefault(key, {}) if new else _held.get(key)


def take(record) -> dict:
    """A server record's stamps, for its frame (bench/trace_server.py)."""
    return _held.pop((record.sensor_id, record.ts), None) or {}


def received(records) -> None:
    """Stamp bench readings as they reach the broadcaster (or the relay's buffer)."""
    now = time.time()
    entered = getattr(_request, "t", None)
    for record in records:
        sensor_id = record.get("sensor_id", "") if isinstance(record, dict) else record.sensor_id
        if sensor_id.startswith(PREFIX):
            stamps = _stamps(record, new=True)
            stamps["trace_in"] = entered
            stamps["trace_pub"] = now


def emitted(records) -> None:
    """Stamp bench readings as their frame is handed to Socket.IO."""
    now = time.time()
    for record in records:
        stamps = _stamps(record)
        if stamps is not None and "trace_pub" in stamps:
            stamps["trace_emit"] = now


# The hub watch naps this long; a nap that overruns by more than HUB_NOTED_S is noted.
HUB_NAP_S = 0.001
HUB_NOTED_S = 0.005


def watch_hub(socketio) -> None:
    """Note every stall of this server's scheduling loop in BENCH_TRACE_GC:
    a background task naps HUB_NAP_S and writes `hub <time> <late ms> <cpu ms> <system cpu ms>`
    when it wakes more than HUB_NOTED_S late, with the process's CPU time over
    that span (about the span: the process was busy, e.g. a long task or a
    collection; much less: it was waiting for a core)."""
    path = os.environ.get("BENCH_TRACE_GC")
    if not path:
        return
    out = open(path, "a", buffering=1)

    def watch():
        while True:
            wall, cpu = time.perf_counter(), os.times()
            socketio.sleep(HUB_NAP_S)
            late = time.perf_counter() - wall - HUB_NAP_S
            if late > HUB_NOTED_S:
                now = os.times()
                user, system = now.user - cpu.user, now.system - cpu.system
                out.write(f"hub {time.time():.6f} {1000 * late:.3f} {1000 * (user + system):.3f} "
                          f"{1000 * system:.3f}\n")

    socketio.start_background_task(watch)


# A greenthread that runs this long without switching is noted (BENCH_TRACE_SWITCHES=1).
LONG_RUN_S = float(os.environ.get("BENCH_TRACE_LONG_MS", "5")) / 1000


def watch_switches() -> None:
    """Note every greenthread that ran more than LONG_RUN_S without yielding:
    `run <time> <ms> <where it yielded, innermost last>` (greenlet's trace hook
    sees every switch; eventlet and gevent only)."""
    path = os.environ.get("BENCH_TRACE_GC")
    if not path or not os.environ.get("BENCH_TRACE_SWITCHES"):
        return
    import greenlet

    out = open(path, "a", buffering=1)
    last = [time.perf_counter()]

    def where(g) -> str:
        frame, names = getattr(g, "gr_frame", None), []
        while frame is not None and len(names) < 12:
            names.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}")
            frame = frame.f_back
        return ">".join(reversed(names)) or "?"

    def hook(event, args):
        now = time.perf_counter()
        ran = now - last[0]
        last[0] = now
        if event in ("switch", "throw") and ran > LONG_RUN_S:
            origin = args[0]
            out.write(f"run {time.time():.6f} {1000 * ran:.3f} {where(origin)}\n")

    greenlet.settrace(hook)


def note_gc() -> None:
    """Write every collector pause of this process to BENCH_TRACE_GC (time, generation, ms)."""
    path = os.environ.get("BENCH_TRACE_GC")
    if not path:
        return
    out = open(path, "a", buffering=1)
    started = [0.0]

    def callback(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took >= GC_NOTED_S:
            out.write(f"gc {time.time():.6f} {info['generation']} {1000 * took:.3f}\n")

    gc.callbacks.append(callback)
