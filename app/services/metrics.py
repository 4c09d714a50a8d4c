"""Counters with a per-second rate, for /api/status and /metrics.

Counted from every ingest thread at once under ASYNC_MODE=threading, so each
update holds a lock: `total += n` is a read-modify-write that loses counts
under real threads.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

# The rate is averaged over this many whole seconds.
RATE_WINDOW_S = 10


class RateCounter:
    """A running total plus its rate over the last RATE_WINDOW_S seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.total = 0
        self._seconds: deque[list] = deque()
        self._lock = threading.Lock()

    def add(self, count: int = 1) -> None:
        second = int(self.clock())
        with self._lock:
            self.total += count
            if self._seconds and self._seconds[-1][0] == second:
                self._seconds[-1][1] += count
            else:
                self._seconds.append([second, count])
                self._trim(second)

    def rate(self) -> float:
        now = int(self.clock())
        with self._lock:
            self._trim(now)
            # The current second is partial; count only finished ones.
            done = sum(count for second, count in self._seconds if second < now)
        return round(done / RATE_WINDOW_S, 1)

    def _trim(self, now: int) -> None:
        while self._seconds and self._seconds[0][0] < now - RATE_WINDOW_S:
            self._seconds.popleft()


class Metrics:
    """Named counters, created on first use, e.g. `ingested.http`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._counters: dict[str, RateCounter] = {}
        self._lock = threading.Lock()

    def counter(self, name: str) -> RateCounter:
        counter = self._counters.get(name)
        if counter is None:
            with self._lock:   # two threads creating one counter would each count half
                counter = self._counters.setdefault(name, RateCounter(self.clock))
        return counter

    def add(self, name: str, count: int = 1) -> None:
        self.counter(name).add(count)

    def summary(self, prefix: str) -> dict:
        """`{"total", "per_second", "by_source": {...}}` over counters `prefix.*`."""
        with self._lock:
            counters = list(self._counters.items())
        parts = {name.split(".", 1)[1]: c for name, c in counters if name.startswith(prefix + ".")}
        return {
            "total": sum(c.total for c in parts.values()),
            "per_second": round(sum(c.rate() for c in parts.values()), 1),
            "by_source": {name: c.total for name, c in sorted(parts.items())},
        }
