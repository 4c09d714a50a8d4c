"""One leader at a time, by a lease its holder keeps renewing.

The lease's time to live is LEADER_LEASE_S minus one acquire poll, so when a
leader dies a follower holds the lease within LEADER_LEASE_S. A leader counts
itself leader only until its last renewal *began* plus the TTL: the lease in
Redis outlives that, so an old leader has stopped before a new one can start.
If Redis cannot be reached the leader steps down when that time runs out:
nobody leads until Redis is back (commands are not sent twice to be safe).
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from app.services.cluster.ports import Lease

logger = logging.getLogger(__name__)

# How often a follower tries to take the lease (s).
ACQUIRE_POLL_S = 0.5
# Renewals per TTL: three chances before the lease runs out.
RENEWALS_PER_TTL = 3


class Leadership:
    def __init__(self, lease: Lease, holder: str, lease_s: float, spawn: Callable,
                 sleep: Callable[[float], None],
                 on_change: Callable[[bool], None] = lambda leading: None,
                 clock: Callable[[], float] = time.monotonic):
        if lease_s <= 2 * ACQUIRE_POLL_S:
            raise ValueError(f"LEADER_LEASE_S must be above {2 * ACQUIRE_POLL_S}s")
        self.lease = lease
        self.holder = holder
        self.ttl_s = lease_s - ACQUIRE_POLL_S
        self.spawn = spawn
        self.sleep = sleep
        self.on_change = on_change
        self.clock = clock
        self._valid_until = 0.0
        self._leading = False
        self._running = False
        self.terms = 0            # times this instance became leader
        self.became_leader_at: float | None = None

    @property
    def is_leader(self) -> bool:
        """True while our lease is certainly ours (checked before each command)."""
        return self._leading and self.clock() < self._valid_until

    def start(self) -> None:
        self._running = True
        self.spawn(self._run)

    def stop(self) -> None:
        self._running = False
        if self._leading:
            self._set(False)
            self.lease.release(self.holder)

    def step(self) -> None:
        """One round: renew if leading, else try to take the lease."""
        began = self.clock()
        if self._leading:
            if self.lease.renew(self.holder, self.ttl_s):
                self._valid_until = began + self.ttl_s
            elif began >= self._valid_until:
                logger.warning("leader lease lost or unrenewable: stepping down")
                self._set(False)
            return
        if self.lease.acquire(self.holder, self.ttl_s):
            self._valid_until = began + self.ttl_s
            self._set(True)

    def _set(self, leading: bool) -> None:
        self._leading = leading
        if leading:
            self.terms += 1
            self.became_leader_at = time.time()
            logger.info("%s is now the leader", self.holder)
        try:
            self.on_change(leading)
        except Exception:
            logger.exception("leadership change handler failed")

    def _run(self) -> None:
        while self._running:
            try:
                self.step()
            except Exception:   # keep trying whatever one round did
                logger.exception("leadership round failed")
            if not self._running:
                break
            self.sleep(self.ttl_s / RENEWALS_PER_TTL if self._leading else ACQUIRE_POLL_S)
            if self._leading and self.clock() >= self._valid_until:
                self._set(False)   # the sleep overran the lease (a long stall)
