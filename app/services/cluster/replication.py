"""Ingest once, state everywhere: accepted batches through a shared log.

The instance that accepts a batch stores it, writes its history (once) and
appends it to the log. Every instance reads the log in order and applies the
batches others accepted to its own live store. While the log is unreachable,
accepted batches wait in a disk outbox, in order, and go to the log when it is
back, so a brief Redis outage never loses an accepted reading; readers resume
from their last id and catch up by themselves.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from app.services.cluster.ports import BatchLog, LogEntry, LogUnavailable

logger = logging.getLogger(__name__)

# Entries read per call, and how long a read waits for new ones (s): short
# enough that stop() is noticed promptly.
READ_COUNT = 500
READ_BLOCK_S = 1.0
# Back-off while the log is unreachable (s).
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0
# Entries fetched per call when rebuilding or re-writing history.
RANGE_CHUNK = 1000


def as_is(record: Any) -> Any:
    """The codec of a log whose records are JSON already (the shared operator state)."""
    return record


class Outbox:
    """Batches the log could not take yet, on disk (a DiskSpool of JSON), oldest first.

    Records are kept as the log's JSON (`encode`/`decode`, as the log's own:
    Reading.to_dict for readings), so an outbox left by an earlier version
    is read as it was written."""

    def __init__(self, spool, *, encode: Callable[[Any], Any] = as_is,
                 decode: Callable[[Any], Any] = as_is):
        self.spool = spool
        self.encode = encode
        self.decode = decode

    def put(self, origin: str, records: list) -> None:
        encode = self.encode
        self.spool.append(json.dumps({"o": origin, "r": [encode(r) for r in records]},
                                     separators=(",", ":")).encode(), len(records))

    def oldest(self):
        item = self.spool.oldest()
        if item is None:
            return None
        path, data = item
        body = json.loads(data)
        return path, body["o"], [self.decode(r) for r in body["r"]]

    def remove(self, path) -> None:
        self.spool.remove(path)

    def pending(self) -> int:
        return self.spool.pending_points()


class Replicator:
    def __init__(self, log: BatchLog, outbox: Outbox, incarnation: str,
                 apply: Callable[[list, str], None], spawn: Callable,
                 sleep: Callable[[float], None]):
        self.log = log
        self.outbox = outbox
        self.incarnation = incarnation
        self.apply = apply
        self.spawn = spawn
        self.sleep = sleep
        self.last_id = "0-0"          # last entry applied (or skipped as our own)
        self.applied_batches = 0
        self.published_batches = 0
        self.log_up = True
        self.last_error: str | None = None
        self._spooling = outbox.pending() > 0   # leftovers of an earlier run go first
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._running = False

    # -- the accepting side -------------------------------------------------------
    def publish(self, records: list) -> None:
        """Append an accepted batch to the log, or to the outbox while the log is away."""
        if not self._spooling:
            # No lock around the append: concurrent requests' appends need no
            # order between them (the store keeps the newest reading by time).
            try:
                self.log.append(self.incarnation, records)
                self.published_batches += 1
                return
            except LogUnavailable as error:
                self._down(error)
        with self._lock:
            self._spooling = True
            self.outbox.put(self.incarnation, records)
        self._wake.set()

    def _flush_outbox(self) -> None:
        backoff = RETRY_MIN_S
        while self._running:
            if not self._spooling:
                self._wake.wait(timeout=READ_BLOCK_S)
                self._wake.clear()
                continue
            with self._lock:
                item = self.outbox.oldest()
                if item is None:
                    self._spooling = False
                    logger.info("shared log outbox drained")
                    continue
            path, origin, records = item
            try:
                self.log.append(origin, records)
            except LogUnavailable as error:
                self._down(error)
                self.sleep(backoff)
                backoff = min(RETRY_MAX_S, backoff * 2)
                continue
            backoff = RETRY_MIN_S
            self.outbox.remove(path)
            self.published_batches += 1

    # -- the reading side --------------------------------------------------------
    def rebuild(self) -> int:
        """Apply the whole log from its oldest entry; returns the batches applied.

        Run before the instance reports ready. Raises LogUnavailable.
        """
        applied, start = 0, "-"
        while True:
            entries = self.log.range(start, RANGE_CHUNK)
            applied += self._apply(entries)
            if len(entries) < RANGE_CHUNK:
                return applied
            start = _next_id(entries[-1].id)

    def _apply(self, entries: list[LogEntry]) -> int:
        applied = 0
        for entry in entries:
            if entry.origin != self.incarnation:   # our own batches are in the store already
                try:
                    self.apply(entry.records, entry.origin)
                    applied += 1
                except Exception:   # one bad batch must not stop replication
                    logger.exception("applying log entry %s failed", entry.id)
            self.last_id = entry.id
        self.applied_batches += applied
        return applied

    def _consume(self) -> None:
        backoff = RETRY_MIN_S
        while self._running:
            try:
                entries = self.log.read_after(self.last_id, READ_COUNT, READ_BLOCK_S,
                                              skip_origin=self.incarnation)
            except LogUnavailable as error:
                self._down(error)
                self.sleep(backoff)
                backoff = min(RETRY_MAX_S, backoff * 2)
                continue
            if not self.log_up:
                logger.info("shared log reachable again; resuming after %s", self.last_id)
            self.log_up, backoff = True, RETRY_MIN_S
            self._apply(entries)

    def _down(self, error: Exception) -> None:
        if self.log_up:
            logger.warning("shared log unreachable (%s): spooling what we accept, serving what we have",
                           error)
        self.log_up = False
        self.last_error = str(error)

    # -- lifecycle and views -----------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.spawn(self._consume)
        self.spawn(self._flush_outbox)
        self._wake.set()

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    def lag(self) -> dict:
        """How far behind the log's newest entry our live store is."""
        try:
            info = self.log.info()
        except LogUnavailable:
            return {"entries_behind": None, "ms_behind": None, "outbox": self.outbox.pending()}
        last = info["last_id"]
        behind_ms = max(0, int(last.split("-")[0]) - int(self.last_id.split("-")[0])) if last else 0
        return {"ms_behind": behind_ms, "last_id": last, "applied_id": self.last_id,
                "length": info["length"], "outbox": self.outbox.pending()}

    def rewrite(self, origin: str, since_ms: int, write: Callable[[list], None]) -> int:
        """Write again to history what `origin` accepted since `since_ms`; returns readings.

        For an instance that died before its history buffer reached the
        database: a re-write is the identical point (same series, same
        timestamp), which InfluxDB keeps once. Raises LogUnavailable.
        """
        written, start = 0, f"{max(0, since_ms)}-0"
        while True:
            entries = self.log.range(start, RANGE_CHUNK)
            for entry in entries:
                if entry.origin == origin:
                    write(entry.records)
                    written += len(entry.records)
            if len(entries) < RANGE_CHUNK:
                return written
            start = _next_id(entries[-1].id)


def _next_id(entry_id: str) -> str:
    """The smallest id after `entry_id`: ranges are inclusive."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"
