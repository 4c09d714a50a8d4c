"""Coalescing broadcaster for sensor readings on `/live`.

Ingest hands it records; a background task sends them as frames:
- `sensor_update`: changes beyond a sensor's deadband, at most one frame per
  `interval` per audience, with a leading edge: the first change after a quiet
  spell is sent at once, so coalescing adds no latency at low rates.
- `minor_update`: changes inside the deadband, every `minor_interval`.
Each frame is one `emit` to a room: python-socketio encodes the packet once
and sends the same string to every member (tests/unit/test_fanout.py).
The audience `all` gets everything; a client that subscribed to nodes sits in
`node:<id>` rooms instead and gets only their readings.

Ingest calls `publish` from many threads at once under ASYNC_MODE=threading
(and from many greenthreads under eventlet/gevent), so the pending buffers
and counts are touched only under one lock, held for dictionary work only,
never across an emit.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from app import wire
from app.domain.records import Reading

logger = logging.getLogger(__name__)

ALL_ROOM = "all"
# Frames whose lateness (sent after they were due) is kept for /api/status.
LATENESS_KEPT = 1000


def node_room(node_id: str) -> str:
    return f"node:{node_id}"


class Broadcaster:
    def __init__(self, socketio, namespace: str, interval_s: float, minor_interval_s: float,
                 deadband: Callable[[str], float], on_frame: Callable[[int], None] | None = None,
                 leading_edge: bool = True):
        self.socketio = socketio
        self.namespace = namespace
        self.interval = interval_s
        self.minor_interval = minor_interval_s
        self.deadband = deadband
        self.on_frame = on_frame or (lambda size: None)
        # False: every frame waits a full interval from its first change (a
        # plain trailing tick); kept to measure what the leading edge buys.
        self.leading_edge = leading_edge
        self._lock = threading.Lock()
        self._pending: dict[str, Reading] = {}
        self._minor: dict[str, Reading] = {}
        self._last_sent_value: dict[str, float] = {}
        self._subscribed: dict[str, int] = {}   # node id -> subscribed clients
        # Nodes with subscribers on other instances (a cluster sets this).
        self.remote_rooms: Callable[[], frozenset[str]] = frozenset
        self._wake = threading.Event()
        self._running = False
        # Seconds each recent frame went out after it was due: the tick's jitter.
        self._late: deque[float] = deque(maxlen=LATENESS_KEPT)

    # -- called from ingest (any thread or greenthread) ----------------------
    def publish(self, records: list[Reading]) -> None:
        significant = False
        deadband = self.deadband
        with self._lock:
            pending, minor, last_sent = self._pending, self._minor, self._last_sent_value
            for record in records:
                sid = record.sensor_id
                last = last_sent.get(sid)
                if last is None or abs(record.value - last) > deadband(sid):
                    pending[sid] = record
                    last_sent[sid] = record.value
                    minor.pop(sid, None)
                    significant = True
                else:
                    minor[sid] = record
        if significant:
            self._wake.set()

    def emit(self, event: str, payload) -> None:
        """A non-sensor event (routing, decision, alert ...) to every /live client."""
        self.socketio.emit(event, payload, namespace=self.namespace)

    # -- subscriptions -----------------------------------------------------
    def local_rooms(self) -> set[str]:
        with self._lock:
            return set(self._subscribed)

    def subscribed(self, node_id: str, delta: int) -> None:
        with self._lock:
            count = self._subscribed.get(node_id, 0) + delta
            if count > 0:
                self._subscribed[node_id] = count
            else:
                self._subscribed.pop(node_id, None)

    # -- background task ---------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.socketio.start_background_task(self._run)

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    def _run(self) -> None:
        # -inf: the very first change goes out at once too (leading edge).
        last_frame = last_minor = float("-inf")
        while self._running:
            self._wake.wait(timeout=self.minor_interval)
            self._wake.clear()
            try:
                now = time.monotonic()
                if self._pending:
                    start = last_frame if self.leading_edge else max(last_frame, now)
                    due = max(now, start + self.interval)
                    if due > now:
                        self.socketio.sleep(due - now)  # trailing edge: gather more
                    # The period counts from the frame's start, so the time an
                    # emit takes does not stretch it.
                    last_frame = time.monotonic()
                    self._late.append(last_frame - due)
                    self._flush("sensor_update", self._take_pending())
                if self._minor and now - last_minor >= self.minor_interval:
                    last_minor = now
                    self._flush("minor_update", self._take_minor())
            except Exception:  # keep broadcasting whatever one frame did
                logger.exception("broadcast failed")

    def tick_lateness_ms(self) -> dict:
        """How late recent frames went out (p50, p99, max in ms): the tick's jitter."""
        late = sorted(self._late)
        if not late:
            return {"p50": None, "p99": None, "max": None}
        pick = lambda share: round(1000 * late[min(len(late) - 1, int(share * len(late)))], 2)  # noqa: E731
        return {"p50": pick(0.5), "p99": pick(0.99), "max": round(1000 * late[-1], 2)}

    def _take_pending(self) -> list[Reading]:
        # Swap under the lock: a publish either lands in this frame or the next, never lost.
        with self._lock:
            taken, self._pending = self._pending, {}
        return list(taken.values())

    def _take_minor(self) -> list[Reading]:
        with self._lock:
            taken, self._minor = self._minor, {}
        return list(taken.values())

    def _flush(self, event: str, records: list[Reading]) -> None:
        if not records:
            return
        frames = wire.readings(records)   # the store's internals (epoch `ts`) stay here
        emit = self.socketio.emit
        emit(event, {"readings": frames}, namespace=self.namespace, to=ALL_ROOM)
        self.on_frame(len(frames))
        with self._lock:
            subscribed = set(self._subscribed)
        # Rooms whose viewers sit on other instances count too (a cluster sets this).
        subscribed |= self.remote_rooms()
        if subscribed:
            by_node: dict[str, list[dict]] = {}
            for record, frame in zip(records, frames):
                node = record.node_id
                if node in subscribed:
                    by_node.setdefault(node, []).append(frame)
            for node, subset in by_node.items():
                emit(event, {"readings": subset}, namespace=self.namespace, to=node_room(node))
