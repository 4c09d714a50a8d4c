"""`python run.py` with the latency trace of bench/trace.py: for bench/latency.py --trace.

Imports run.py (which monkey-patches for its async mode first, as always),
stamps requests, broadcaster input and frame emission, then runs its main().
The server is otherwise the real one, with every hook on.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import run  # noqa: E402  (patches eventlet/gevent before anything else)

from app import wire  # noqa: E402
from app.realtime import broadcaster  # noqa: E402
from bench import trace  # noqa: E402

_create_app = run.create_app


def create_app(settings):
    app = _create_app(settings)
    trace.timed_wsgi(app)
    trace.watch_hub(app.extensions["socketio"])
    return app


_publish = broadcaster.Broadcaster.publish
_flush = broadcaster.Broadcaster._flush


def publish(self, records):
    trace.received(records)
    _publish(self, records)


def flush(self, event, records):
    trace.emitted(records)
    _flush(self, event, records)


_readings = wire.readings


def readings(records):
    """The frame's shape, with the trace stamps kept (the wire shape drops unknown keys)."""
    records = list(records)
    shaped = _readings(records)
    for record, out in zip(records, shaped):
        out.update(trace.take(record))
    return shaped


run.create_app = create_app
wire.readings = readings
broadcaster.Broadcaster.publish = publish
broadcaster.Broadcaster._flush = flush
trace.note_gc()
trace.watch_switches()

if __name__ == "__main__":
    run.main()
