"""Line-protocol batches to InfluxDB, with every write status handled and nothing lost.

One task does all the sending, so order per series holds without locks:
buffered lines go out directly while the store takes them; once a write has
to be held (see influx_status), that batch and every batch after it go to the
disk spool, and the spool is drained oldest first, with capped, jittered
back-off (or the store's Retry-After), until it is empty. Only then do
writes go direct again. A restart resumes from the spool.

A resent batch cannot duplicate anything: InfluxDB keeps one point per
series and timestamp, so writing it again overwrites it with itself.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from typing import Callable

from app.adapters.influx_status import WriteFailure, backoff_s, classify, refusal
from app.adapters.spool import DiskSpool
from app.domain.clock import iso

logger = logging.getLogger(__name__)

# Lines held in memory before new batches spill straight to the spool.
MAX_BUFFERED_LINES = 200_000
# While writes are held, buffered lines are spilled to disk at least this often
# (or once a full batch is buffered), so an outage makes few, large spool files.
SPILL_INTERVAL_S = 1.0
# Rejected points are counted each time; the log names the first bad line at most this often.
REJECT_LOG_INTERVAL_S = 60.0
# Seconds between pings while nothing is written, so health notices an idle outage.
PING_INTERVAL_S = 5.0


class HeldWriter:
    def __init__(self, send: Callable[[bytes], None], spool: DiskSpool, spawn: Callable,
                 sleep: Callable[[float], None], *, batch_lines: int = 5000,
                 flush_interval_s: float = 0.1, retry_base_s: float = 0.5, retry_max_s: float = 30.0,
                 alert_after_s: float = 60.0, ping: Callable[[], bool] | None = None,
                 on_failing: Callable[[dict], None] | None = None,
                 on_recovered: Callable[[dict], None] | None = None,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random):
        self.send = send
        self.spool = spool
        self.spawn = spawn
        self.sleep = sleep
        self.batch_lines = batch_lines
        self.flush_interval_s = flush_interval_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.alert_after_s = alert_after_s
        self.ping = ping
        self.on_failing = on_failing or (lambda detail: None)
        self.on_recovered = on_recovered or (lambda detail: None)
        self.clock = clock
        self.rand = rand
        self._buffer: deque[str] = deque()
        self._wake = threading.Event()
        self._running = False
        self._sending = 0
        # Largest batch the store took since a 413; grows back after successes.
        self._max_lines = batch_lines
        self._failing_since: float | None = None
        self._last_failure: WriteFailure | None = None
        self._last_failure_at: float | None = None
        self._attempt = 0
        self._retry_at = 0.0                  # monotonic time of the next spool attempt
        self._last_spill = 0.0
        self._last_activity = time.monotonic()
        self._reachable = True
        # None until known: an alert reopened from history at start-up is cleared
        # by the first write that goes through.
        self._alerting: bool | None = None
        self._last_reject_log = -REJECT_LOG_INTERVAL_S
        self.written = 0
        self.held_total = 0
        self.splits = 0
        self.rejected: Counter[str] = Counter()
        # Called each round in which everything given so far has been delivered
        # (the rollup back-fill of late points hangs here).
        self.after_delivery: list[Callable[[], None]] = []

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.spawn(self._run)

    def stop(self) -> None:
        """Write what is buffered (or hold it on disk); held batches wait for the next start."""
        self._running = False
        self._wake.set()
        self._move_buffer(final=True)

    def add(self, lines: list[str]) -> None:
        self._buffer.extend(lines)
        if len(self._buffer) >= self.batch_lines:
            self._wake.set()

    def _run(self) -> None:
        while self._running:
            self._wake.wait(timeout=self.flush_interval_s)
            self._wake.clear()
            try:
                self.pump()
            except Exception:
                logger.exception("history writer failed a round; retrying")
                self.sleep(self.flush_interval_s)

    def pump(self) -> None:
        """One round: send or hold what is buffered, drain the spool if due, watch the alert."""
        self._move_buffer()
        self._drain()
        if not self.holding and not self._buffer:
            for hook in self.after_delivery:     # everything given so far is in the store
                try:
                    hook()
                except Exception:
                    logger.exception("after-delivery hook failed")
        self._idle_ping()
        self._watch_alert()

    # -- sending -----------------------------------------------------------------
    @property
    def holding(self) -> bool:
        return self._failing_since is not None or len(self.spool) > 0

    def _take(self, count: int) -> list[str]:
        buffer = self._buffer
        return [buffer.popleft() for _ in range(min(count, len(buffer)))]

    def _move_buffer(self, final: bool = False) -> None:
        buffer = self._buffer
        while buffer:
            if self.holding or len(buffer) > MAX_BUFFERED_LINES:
                # Behind what is held: to disk, in order. Small remainders wait for the next spill.
                if not final and len(buffer) < self.batch_lines and \
                        time.monotonic() - self._last_spill < SPILL_INTERVAL_S:
                    return
                self._hold_lines(self._take(self.batch_lines))
                self._last_spill = time.monotonic()
                continue
            lines = self._take(min(self.batch_lines, self._max_lines))
            self._sending = len(lines)
            try:
                left, failure = self.deliver(lines)
            finally:
                self._sending = 0
            if failure is not None:
                self._hold_lines(left)
                self._failed(failure)
            else:
                self._succeeded()
            if not final:
                self.sleep(0)   # let ingest run between batches

    def _hold_lines(self, lines: list[str]) -> None:
        if lines:
            self.spool.append("\n".join(lines).encode(), len(lines))
            self.held_total += len(lines)

    def _drain(self) -> None:
        while self._running and len(self.spool) and time.monotonic() >= self._retry_at:
            oldest = self.spool.oldest()
            if oldest is None:
                return
            path, data = oldest
            lines = data.decode().split("\n")
            left, failure = self.deliver(lines)
            if failure is not None:
                if len(left) != len(lines):
                    self.spool.replace(path, "\n".join(left).encode(), len(left))
                self._failed(failure)
                return
            self.spool.remove(path)
            self._succeeded()
            self._move_buffer()       # keep new readings flowing to disk behind the drain
            self.sleep(0)

    def deliver(self, lines: list[str]) -> tuple[list[str], WriteFailure | None]:
        """Send `lines`, splitting on 413 and dropping only refused points.

        Returns the lines still to hold (in order) and why, or `([], None)`.
        """
        step = max(1, self._max_lines)
        parts = deque(lines[i:i + step] for i in range(0, len(lines), step))
        while parts:
            part = parts.popleft()
            try:
                self.send("\n".join(part).encode())
            except Exception as error:
                failure = classify(error)
                if failure.kind == "hold":
                    return [line for chunk in (part, *parts) for line in chunk], failure
                if failure.kind == "too_large":
                    if len(part) == 1:
                        self._reject(1, "too_large", part[0], failure.message)
                        continue
                    self.splits += 1
                    half = len(part) // 2
                    self._max_lines = max(1, half)
                    parts.extendleft([part[half:], part[:half]])
                    continue
                parts.extendleft(self._refused(part, failure.message))
                continue
            self.written += len(part)
            self._last_activity = time.monotonic()
            if self._max_lines < self.batch_lines:
                self._max_lines = min(self.batch_lines, self._max_lines * 2)
        return [], None

    def _refused(self, part: list[str], message: str) -> list[list[str]]:
        """Handle a 400/422; returns the parts still to send, in reverse order for extendleft."""
        answer = refusal(message)
        named = [line for line in part if line in answer.bad_lines]
        if answer.partial:
            # InfluxDB kept every point it did not name or count.
            count = min(len(part), max(len(named), len(answer.bad_lines)) + answer.dropped)
            self.written += len(part) - count
            self._reject(count, answer.reason, named[0] if named else None, message)
            return []
        if named:
            self._reject(len(named), answer.reason, named[0], message)
            rest = [line for line in part if line not in answer.bad_lines]
            return [rest] if rest else []
        if len(part) == 1:
            self._reject(1, answer.reason, part[0], message)
            return []
        # Nothing named: find the bad points by halving.
        half = len(part) // 2
        return [part[half:], part[:half]]

    def _reject(self, count: int, reason: str, line: str | None, message: str) -> None:
        if count <= 0:
            return
        self.rejected[reason] += count
        now = time.monotonic()
        if now - self._last_reject_log >= REJECT_LOG_INTERVAL_S:
            self._last_reject_log = now
            logger.error("InfluxDB rejected %d point(s) (%s): %s; first offending line: %s "
                         "(further rejections are counted in history_points_rejected_total, "
                         "logged at most once a minute)",
                         count, reason, message[:300], (line or "not named")[:500])

    # -- state ---------------------------------------------------------------------
    def _failed(self, failure: WriteFailure) -> None:
        now = self.clock()
        if self._failing_since is None:
            self._failing_since = now
            logger.warning("InfluxDB write held (%s %s); holding history in the spool and retrying",
                           failure.status or "no answer", failure.message[:300])
        self._last_failure, self._last_failure_at = failure, now
        self._reachable = not failure.unreachable
        self._attempt += 1
        delay = failure.retry_after_s
        if delay is None:
            delay = backoff_s(self._attempt, self.retry_base_s, self.retry_max_s, self.rand)
        self._retry_at = time.monotonic() + delay

    def _succeeded(self) -> None:
        self._reachable = True
        if self._failing_since is not None:
            logger.info("InfluxDB takes writes again after %.1f s; draining the spool",
                        self.clock() - self._failing_since)
            self._failing_since = None
            self._attempt = 0
            self._retry_at = 0.0

    def _idle_ping(self) -> None:
        if self.ping is None or self.holding:
            return
        if time.monotonic() - self._last_activity < PING_INTERVAL_S:
            return
        self._last_activity = time.monotonic()
        self._reachable = self.ping()

    def _watch_alert(self) -> None:
        if self._failing_since is not None:
            if not self._alerting and self.clock() - self._failing_since >= self.alert_after_s:
                self._alerting = True
                self.on_failing(self.detail())
        elif self._alerting or (self._alerting is None and self.written):
            self._alerting = False
            self.on_recovered(self.detail())

    def state(self) -> str:
        """`ok`; `degraded` while writes are held or the spool drains; `down` once writes
        have failed for `alert_after_s` (the alert is up) or the store does not answer."""
        if not self._reachable or (self._failing_since is not None and
                                   self.clock() - self._failing_since >= self.alert_after_s):
            return "down"
        return "degraded" if self.holding else "ok"

    def detail(self) -> dict:
        now = self.clock()
        held_at = self.spool.oldest_held_at()
        failure = self._last_failure
        return {
            "state": self.state(),
            "failing_for_s": round(now - self._failing_since, 1) if self._failing_since else None,
            "last_error": None if failure is None else {
                "status": failure.status, "message": failure.message[:300],
                "at": iso(self._last_failure_at)},
            "retry_in_s": round(max(0.0, self._retry_at - time.monotonic()), 2)
            if self._failing_since else None,
            "spool": {"points": self.spool.pending_points(), "bytes": self.spool.pending_bytes(),
                      "batches": len(self.spool),
                      "oldest_held_age_s": round(now - held_at, 1) if held_at else None},
        }

    def queued(self) -> int:
        return len(self._buffer) + self._sending
