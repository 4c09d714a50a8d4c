"""The product's clock: one source of "now", injected by the bootstrap.

Every service that stamps, ages or schedules in the product's own time takes
a `Clock` in its constructor and never reads the wall clock itself:
ingest's receipt stamps and skew check, the store's freshness and fusion
window, the forecast's slots, leak baselines and hold times (reading time,
which the clock stamps), alert timestamps and shelf expiry, the re-plan
interval, the plan's step hours and tariff periods, decisions, controls,
history events, health and offline checks, and the simulator.

- `SystemClock`: the wall clock (the default; SIMULATOR_SPEED=1).
- `SimulatedClock`: starts at the wall time and runs SIMULATOR_SPEED times
  faster. With it a simulated day passes in minutes for every part at once:
  the simulator's physics, the readings' stamps, the forecast, leak watch,
  the plan's hours, alert timers and history.
- `ManualClock`: moves only when a test calls `advance()`, so tests move
  time instead of sleeping.

Real time stays real where it measures or paces the machinery rather than
the water network, because a faster clock there would only break it:
socket and HTTP timeouts, retry back-off (HTTP sources, InfluxDB writes),
the broadcaster's frame tick, event-loop sleeps (the simulator's 1 s tick,
the monitor's round), rate limits, request and solve durations, uptime,
throughput rates in the metrics, the cluster's leases and heartbeats (other
processes and Redis keep real time), devices' command timeouts and
long-polls (a device answers in real seconds), and InfluxDB's own retention
and continuous queries. Those read `time` directly, outside app/services
and app/domain, or are listed in tests/unit/test_clock_reads.py.
`real_seconds()` turns a span of clock time into the real wait that
background tasks sleep for.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable, Protocol


def iso(ts: float) -> str:
    """An instant of the clock (epoch seconds) as clients read it: ISO 8601 UTC with `Z`."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


class Clock(Protocol):
    # Clock seconds per real second: 1, or SIMULATOR_SPEED.
    rate: float

    def now(self) -> float:
        """Epoch seconds, as the product sees them."""

    def __call__(self) -> float:
        """The same as now(): a clock can stand wherever a `() -> float` is asked."""

    def real_seconds(self, seconds: float) -> float:
        """The real wait that lets `seconds` of this clock pass."""


class _Clock:
    rate = 1.0

    def now(self) -> float:
        raise NotImplementedError

    def __call__(self) -> float:
        return self.now()

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.rate


class SystemClock(_Clock):
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class SimulatedClock(_Clock):
    """Starts at the wall time and runs `speed` times as fast (SIMULATOR_SPEED)."""

    def __init__(self, speed: float, monotonic: Callable[[], float] = time.monotonic):
        if speed <= 0:
            raise ValueError("a simulated clock's speed must be above 0")
        self.rate = float(speed)
        self.started_at = time.time()
        # Elapsed time from the monotonic clock: a wall-clock step never moves simulated time back.
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> float:
        return self.started_at + (self._monotonic() - self._origin) * self.rate


class ManualClock(_Clock):
    """A clock for tests: it stands still until `advance()` moves it."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


def clock_for(speed: float) -> Clock:
    """The product's clock for SIMULATOR_SPEED: the wall clock at 1, else a simulated one."""
    return SystemClock() if speed == 1 else SimulatedClock(speed)
