"""The latency ceiling: a bare Flask-SocketIO relay with the same coalescing, no pipeline.

`POST /api/ingest` keeps the JSON body as the sensor's pending reading; a
background task sends the pending readings to every /live client as one
`sensor_update` frame, at most one per interval, the first after a quiet spell
at once (the same leading edge as ours). No validation, auth, rate limit,
store, history or analysis. Same async mode as the server it is compared with.
Run: python bench/relay.py PORT ASYNC_MODE INTERVAL_MS [leading-edge 1|0]
"""
import sys

MODE = sys.argv[2] if len(sys.argv) > 2 else "eventlet"
if MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.serving import run_options  # noqa: E402
from bench import trace  # noqa: E402

PORT = int(sys.argv[1])
INTERVAL_S = int(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.05
LEADING_EDGE = (sys.argv[4] != "0") if len(sys.argv) > 4 else True

app = Flask(__name__)
socketio = SocketIO(app, async_mode=MODE)
# BENCH_TRACE=1: the same trace stamps as bench/trace_server.py puts in ours.
TRACE = bool(os.environ.get("BENCH_TRACE"))
if TRACE:
    trace.timed_wsgi(app)
    trace.note_gc()
    if MODE != "threading":
        trace.watch_switches()
pending: dict = {}
lock = threading.Lock()
wake = threading.Event()


@app.post("/api/ingest")
def ingest():
    body = request.get_json()
    if TRACE:
        trace.received([body])
    with lock:
        pending[body["sensor_id"]] = body
    wake.set()
    return {"ok": True}, 201


@app.get("/api/health")
def health():
    return {"status": "ok"}


@socketio.on("connect", namespace="/live")
def connect(auth=None):
    pass


def tick():
    global pending
    last = float("-inf")
    while True:
        wake.wait(timeout=1)
        wake.clear()
        if not pending:
            continue
        now = time.monotonic()
        wait = (last if LEADING_EDGE else max(last, now)) + INTERVAL_S - now
        if wait > 0:
            socketio.sleep(wait)
        last = time.monotonic()
        with lock:
            frame, pending = pending, {}
        if TRACE:
            trace.emitted(frame.values())
        socketio.emit("sensor_update", {"readings": list(frame.values())}, namespace="/live")


if __name__ == "__main__":
    socketio.start_background_task(tick)
    if TRACE:
        trace.watch_hub(socketio)
    socketio.run(app, host="127.0.0.1", port=PORT, log_output=False, allow_unsafe_werkzeug=True,
                 **run_options(MODE, 4096))
