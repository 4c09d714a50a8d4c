"""Station rooms across instances: which `node:<id>` rooms have a viewer anywhere.

A Socket.IO room lives in one process; an emit to it goes through the message
queue to every instance, but the broadcaster only emits for nodes that have
a subscriber, and it can only count its own. So each instance publishes the
nodes its viewers subscribed to, and reads everyone's: a frame goes to a
station room whichever instance holds the room's viewers.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

logger = logging.getLogger(__name__)

# How often each instance publishes its rooms and reads the others' (s): a new
# subscriber elsewhere gets its station's frames within about this long.
SYNC_S = 0.5
# Entries not refreshed for this long belong to a dead instance.
STALE_S = 5.0


class RoomDirectory(Protocol):
    def put(self, incarnation: str, nodes: list[str], at: float) -> None: ...
    def entries(self) -> dict[str, tuple[list[str], float]]: ...
    def forget(self, incarnation: str) -> None: ...


class SharedRooms:
    def __init__(self, directory: RoomDirectory, incarnation: str, local: Callable[[], set[str]],
                 spawn: Callable, sleep: Callable[[float], None], clock: Callable[[], float] = time.time):
        self.directory = directory
        self.incarnation = incarnation
        self.local = local
        self.spawn = spawn
        self.sleep = sleep
        self.clock = clock
        self._remote: frozenset[str] = frozenset()
        self._running = False

    def nodes(self) -> frozenset[str]:
        """Nodes with a subscriber on another instance (as of the last sync)."""
        return self._remote

    def sync(self) -> None:
        now = self.clock()
        self.directory.put(self.incarnation, sorted(self.local()), now)
        remote: set[str] = set()
        for incarnation, (nodes, at) in self.directory.entries().items():
            if incarnation != self.incarnation and now - at < STALE_S:
                remote.update(nodes)
        self._remote = frozenset(remote)

    def start(self) -> None:
        self._running = True
        self.spawn(self._run)

    def stop(self) -> None:
        self._running = False
        try:
            self.directory.forget(self.incarnation)
        except Exception:
            pass

    def _run(self) -> None:
        while self._running:
            try:
                self.sync()
            except Exception as error:   # Redis away: keep the last view
                logger.debug("room sync failed: %s", error)
            self.sleep(SYNC_S)
