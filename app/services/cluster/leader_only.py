"""Work that only the leader does: analysis of readings, planning, periodic checks.

`LeaderOnly` wraps a component with start()/stop() (the decision engine, the
monitor) and runs it only while this instance leads. A component stopped on
losing the lease is started again no sooner than RESTART_GRACE_S later, so its
old loop has finished its last sleep and two loops never run side by side.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

logger = logging.getLogger(__name__)

# Longer than the longest sleep of a wrapped loop (the monitor's 2 s round).
RESTART_GRACE_S = 3.0


class LeaderOnly:
    def __init__(self, component, spawn: Callable, sleep: Callable[[float], None],
                 clock: Callable[[], float] = time.monotonic):
        self.component = component
        self.spawn = spawn
        self.sleep = sleep
        self.clock = clock
        self.running = False
        self._stopped_at: float | None = None
        self._generation = 0

    # The node's start()/stop() are the process's; the component follows leadership.
    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.follow(False)

    def follow(self, leading: bool) -> None:
        self._generation += 1
        if leading and not self.running:
            wait = 0.0 if self._stopped_at is None else \
                self._stopped_at + RESTART_GRACE_S - self.clock()
            if wait > 0:
                self.spawn(self._start_later, wait, self._generation)
            else:
                self._start()
        elif not leading and self.running:
            self.running = False
            self._stopped_at = self.clock()
            self.component.stop()

    def _start_later(self, wait: float, generation: int) -> None:
        self.sleep(wait)
        if generation == self._generation:   # leadership did not change again meanwhile
            self._start()

    def _start(self) -> None:
        self.running = True
        self.component.start()
        logger.info("leader: started %s", type(self.component).__name__)

