"""The in-memory live state: latest reading per sensor and a ring of recent points.

Everything here is rebuilt from the readings that flow in, so a restarted or
added instance converges on the same state; nothing in it is the system of
record (that is the history store). Updates are O(1) per reading and take a
lock only around dictionary work, never across I/O.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Iterable

from app.domain.clock import Clock, iso
from app.domain.records import Decision, LiveReading, Reading, Routing
from app.errors import SensorLimitReached
from app.services.fusion import SENSOR, Candidate, choose
from app.services.ring import PointRing

# Decisions kept in memory for /api/decisions and the snapshot.
DECISIONS_KEPT = 500
# A reading older than its sensor's live one by more than this is a back-fill
# (a device posting its buffer): history only. Less late (replays, another
# instance's copy in a cluster) still joins the recent points and analysis.
BACKFILL_AFTER_S = 300.0
# FUSION_WINDOW_S's default: a reading observed longer ago is not fresh for fusion.
FUSION_WINDOW_S = 900.0


class DataStore:
    def __init__(self, max_sensors: int, recent_points: int, *,
                 clock: Clock, fusion_window_s: float = FUSION_WINDOW_S,
                 stale_after: Callable[[Reading], float] | None = None):
        self.max_sensors = max_sensors
        self.recent_points = recent_points
        self.clock = clock
        self.fusion_window_s = fusion_window_s
        # How long a sensor's reading stays current (its own reporting interval);
        # the bootstrap sets it once the network is known.
        self.stale_after: Callable[[Reading], float] = stale_after or (lambda record: fusion_window_s)
        # Latest reading per source, only for sensors that more than devices report on.
        self._candidates: dict[str, dict[str, Candidate]] = {}
        self._lock = threading.Lock()
        self._latest: dict[str, Reading] = {}
        self._received: dict[str, float] = {}
        self._recent: dict[str, PointRing] = {}
        self._decisions: deque[Decision] = deque(maxlen=DECISIONS_KEPT)
        self.routing: Routing | None = None
        self.clients = 0

    # -- readings ---------------------------------------------------------
    def admit(self, sensor_ids: Iterable[str]) -> None:
        """Raise SensorLimitReached if these ids would take us past the cap.

        Called before anything of a batch is stored, so a refused batch
        leaves no trace.
        """
        with self._lock:
            new = {sid for sid in sensor_ids if sid not in self._latest}
            full = new and len(self._latest) + len(new) > self.max_sensors
        if full:
            raise SensorLimitReached(
                f"this server tracks at most {self.max_sensors} distinct sensors; "
                f"{len(new)} new sensor id(s) refused",
                [{"field": "sensor_id", "message": "sensor limit reached"}])

    def put_many(self, records: list[Reading]) -> list[Reading]:
        """Store accepted readings (records of app/domain/records.py).

        Returns the records that became the live value (see app.services.fusion):
        all of them, unless an external source reports on the same sensor or a
        reading is a back-fill (history only, see BACKFILL_AFTER_S).
        """
        now = self.clock()
        fused = False
        late: set[int] = set()
        with self._lock:
            latest, received, recent = self._latest, self._received, self._recent
            candidates = self._candidates
            for record in records:
                sid = record.sensor_id
                source = record.source
                if source != SENSOR or sid in candidates:
                    fused = True
                    self._put_fused(record, source, now)
                    continue
                current = latest.get(sid)
                # A back-filled reading (older than the live one by more than
                # BACKFILL_AFTER_S) goes to history only: it never moves the live
                # value, its recent points or its freshness backwards, nor reaches analysis.
                if current is not None and record.ts < current.ts - BACKFILL_AFTER_S:
                    late.add(id(record))
                    continue
                ring = recent.get(sid)
                if ring is None:
                    ring = recent[sid] = PointRing(self.recent_points)
                ring.append(record.ts, record.value)
                # A slightly late one (a replay, another instance's copy) joins the
                # recent points but never hides a newer one.
                if current is None or record.ts >= current.ts:
                    latest[sid] = record
                    received[sid] = now
        if not fused and not late:
            return records
        if not fused:
            return [r for r in records if id(r) not in late]
        return [r for r in records if self._latest.get(r.sensor_id) is r]

    def _put_fused(self, record: Reading, source: str, now: float) -> None:
        sid = record.sensor_id
        options = self._candidates.get(sid)
        if options is None:
            options = self._candidates[sid] = {}
            current = self._latest.get(sid)
            if current is not None:
                options[current.source] = Candidate(current, self._received[sid])
        known = options.get(source)
        if known is None or record.ts >= known.record.ts:
            options[source] = Candidate(record, now)
        live = choose(options, now, self.fusion_window_s, self.stale_after)
        self._latest[sid], self._received[sid] = live.record, live.received
        if live.record.source == source:
            # The recent ring follows the series the live state shows.
            ring = self._recent.get(sid)
            if ring is None:
                ring = self._recent[sid] = PointRing(self.recent_points)
            ring.append(record.ts, record.value)

    def _live(self, sid: str, now: float) -> tuple[Reading, float]:
        """The live reading of a sensor and when it came; fused choices age with time."""
        options = self._candidates.get(sid)
        if options is None:
            return self._latest[sid], self._received[sid]
        live = choose(options, now, self.fusion_window_s, self.stale_after)
        return live.record, live.received

    def latest(self, sensor_id: str) -> Reading | None:
        if sensor_id in self._candidates:
            with self._lock:
                return self._live(sensor_id, self.clock())[0]
        return self._latest.get(sensor_id)

    def sensor_count(self) -> int:
        return len(self._latest)

    def all_latest(self, stale_after: Callable[[Reading], float]) -> list[LiveReading]:
        """Latest readings with when they came and whether they are stale, for reads and snapshots."""
        now = self.clock()
        with self._lock:
            items = self._live_items(now)
        return [LiveReading(record, rx, now - rx > stale_after(record)) for record, rx in items]

    def stale_count(self, stale_after: Callable[[Reading], float]) -> int:
        """How many sensors are stale, without building the listing."""
        now = self.clock()
        with self._lock:
            items = self._live_items(now)
        return sum(1 for record, rx in items if now - rx > stale_after(record))

    def _live_items(self, now: float) -> list[tuple[Reading, float]]:
        received = self._received
        items = [(r, received[r.sensor_id]) for r in self._latest.values()]
        if self._candidates:
            items = [self._live(r.sensor_id, now) if r.sensor_id in self._candidates else (r, rx)
                     for r, rx in items]
        return items

    def candidates(self, sensor_id: str) -> list[Reading]:
        """The latest reading of each source that reports on this sensor."""
        with self._lock:
            options = self._candidates.get(sensor_id)
            if options is None:
                current = self._latest.get(sensor_id)
                return [current] if current else []
            return [c.record for c in options.values()]

    def forget(self, keep: Callable[[str], bool]) -> int:
        """Drop every sensor for which `keep(sensor_id)` is false; returns how many."""
        with self._lock:
            gone = [sid for sid in self._latest if not keep(sid)]
            for sid in gone:
                self._latest.pop(sid, None)
                self._received.pop(sid, None)
                self._recent.pop(sid, None)
                self._candidates.pop(sid, None)
        return len(gone)

    def recent(self, sensor_id: str) -> list[dict]:
        with self._lock:
            ring = self._recent.get(sensor_id)
            points = ring.points() if ring else []
        return [{"t": iso(ts), "v": value} for ts, value in points]

    def received_at(self, sensor_id: str) -> float | None:
        return self._received.get(sensor_id)

    # -- decisions, routing, clients ---------------------------------------
    def add_decisions(self, decisions: Iterable[Decision]) -> None:
        with self._lock:
            self._decisions.extend(decisions)

    def clear_decisions(self) -> int:
        with self._lock:
            count = len(self._decisions)
            self._decisions.clear()
        return count

    def decisions(self, limit: int) -> list[Decision]:
        with self._lock:
            newest_first = list(reversed(self._decisions))
        return newest_first[:limit]

    def client_connected(self) -> None:
        with self._lock:
            self.clients += 1

    def client_disconnected(self) -> None:
        with self._lock:
            self.clients = max(0, self.clients - 1)
