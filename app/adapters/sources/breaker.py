"""A per-source circuit breaker: after N failures in a row, pause with growing intervals.

Hand-written because it is a dozen lines and the libraries (pybreaker and the
like) wrap calls with a fixed reset time, not the growing pause a polling
source needs. While paused, nothing is fetched; when the pause ends, one trial
fetch runs: a success closes the breaker, a failure doubles the pause (up to
`max_pause_s`). So a source recovers by itself once its server does.
"""
from __future__ import annotations

# Pause after the first trip, as a multiple of the source's own interval.
FIRST_PAUSE_INTERVALS = 2


class CircuitBreaker:
    def __init__(self, failures_to_open: int, interval_s: float, max_pause_s: float):
        self.failures_to_open = failures_to_open
        self.interval_s = interval_s
        self.max_pause_s = max_pause_s
        self.failures = 0       # consecutive
        self.trips = 0          # pauses in a row without a success between
        self.paused_until: float | None = None

    def succeeded(self) -> None:
        self.failures = self.trips = 0
        self.paused_until = None

    def failed(self, now: float) -> float:
        """Count a failure; return the delay until the next fetch."""
        self.failures += 1
        if self.failures < self.failures_to_open:
            return self.interval_s
        self.trips += 1
        pause = min(self.max_pause_s,
                    self.interval_s * FIRST_PAUSE_INTERVALS * 2 ** (self.trips - 1))
        pause = max(pause, self.interval_s)
        self.paused_until = now + pause
        return pause

    def state(self, now: float) -> str:
        if self.paused_until is not None and self.failures >= self.failures_to_open:
            return "paused"
        return "failing" if self.failures else "ok"
