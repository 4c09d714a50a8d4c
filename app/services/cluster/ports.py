"""Ports the cluster services use: a shared batch log, a lease, a member roster.

Each has a Redis adapter (app/adapters/redis_stream.py, redis_lease.py) and
an in-memory one here, for unit tests of the services' logic.
"""
from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass


class LogUnavailable(Exception):
    """The shared log (Redis) cannot be reached right now."""


@dataclass(frozen=True)
class LogEntry:
    id: str              # the log's own id, increasing ("<ms>-<seq>" in Redis)
    origin: str          # incarnation of the instance that accepted the batch
    records: list         # readings (app.domain.records.Reading), or shared state's JSON

    @property
    def ms(self) -> int:
        return int(self.id.split("-", 1)[0])


class BatchLog(ABC):
    """An append-only, bounded log of accepted batches, read by every instance."""

    @abstractmethod
    def append(self, origin: str, records: list) -> str:
        """Add one batch; returns its id. Raises LogUnavailable."""

    @abstractmethod
    def read_after(self, last_id: str, count: int, block_s: float,
                   skip_origin: str | None = None) -> list[LogEntry]:
        """Entries after `last_id` ("0" for all), waiting up to block_s for one.

        Entries of `skip_origin` come without their records (not decoded)."""

    @abstractmethod
    def range(self, start_id: str, count: int) -> list[LogEntry]:
        """Entries from `start_id` inclusive ("-" for the oldest), oldest first."""

    @abstractmethod
    def info(self) -> dict:
        """{"length", "first_id", "last_id", "trimmed": whether older entries were dropped}."""


class Lease(ABC):
    """A named lease held by at most one holder, for a limited time."""

    @abstractmethod
    def acquire(self, holder: str, ttl_s: float) -> bool:
        """Take the lease if free; True if `holder` now holds it."""

    @abstractmethod
    def renew(self, holder: str, ttl_s: float) -> bool:
        """Extend the lease if `holder` still holds it."""

    @abstractmethod
    def release(self, holder: str) -> None:
        """Give the lease up if `holder` holds it."""

    @abstractmethod
    def holder(self) -> str | None:
        """Who holds the lease now, or None."""


class Roster(ABC):
    """Instances that announced themselves, each alive while it keeps beating."""

    @abstractmethod
    def beat(self, incarnation: str, info: dict, ttl_s: float) -> None:
        """Announce (or refresh) this incarnation for ttl_s more seconds."""

    @abstractmethod
    def members(self) -> dict[str, dict]:
        """Incarnation -> its info (with "last_seen" epoch seconds and "alive")."""

    @abstractmethod
    def forget(self, incarnation: str) -> None:
        """Drop an incarnation from the roster (it left, or its leftovers are handled)."""


# -- in-memory adapters, for unit tests ------------------------------------------------
class MemoryLog(BatchLog):
    def __init__(self, maxlen: int = 10_000, clock=time.time):
        self.entries: list[LogEntry] = []
        self.maxlen = maxlen
        self.clock = clock
        self.down = False
        self.trimmed = False
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def append(self, origin: str, records: list) -> str:
        if self.down:
            raise LogUnavailable("log is down")
        with self._cond:
            entry = LogEntry(f"{int(self.clock() * 1000)}-{next(self._seq)}", origin, list(records))
            self.entries.append(entry)
            if len(self.entries) > self.maxlen:
                del self.entries[0]
                self.trimmed = True
            self._cond.notify_all()
        return entry.id

    def _after(self, last_id: str) -> list[LogEntry]:
        if last_id in ("0", "0-0"):
            return list(self.entries)
        key = _id_key(last_id)
        return [e for e in self.entries if _id_key(e.id) > key]

    def read_after(self, last_id: str, count: int, block_s: float,
                   skip_origin: str | None = None) -> list[LogEntry]:
        if self.down:
            raise LogUnavailable("log is down")
        with self._cond:
            found = self._after(last_id)
            if not found and block_s > 0:
                self._cond.wait(block_s)
                found = self._after(last_id)
        return found[:count]

    def range(self, start_id: str, count: int) -> list[LogEntry]:
        if self.down:
            raise LogUnavailable("log is down")
        if start_id == "-":
            return self.entries[:count]
        key = _id_key(start_id)
        return [e for e in self.entries if _id_key(e.id) >= key][:count]

    def info(self) -> dict:
        if self.down:
            raise LogUnavailable("log is down")
        return {"length": len(self.entries),
                "first_id": self.entries[0].id if self.entries else None,
                "last_id": self.entries[-1].id if self.entries else None,
                "trimmed": self.trimmed}


class MemoryLease(Lease):
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._holder: str | None = None
        self._until = 0.0

    def _current(self) -> str | None:
        return self._holder if self._holder and self.clock() < self._until else None

    def acquire(self, holder: str, ttl_s: float) -> bool:
        if self._current() not in (None, holder):
            return False
        self._holder, self._until = holder, self.clock() + ttl_s
        return True

    def renew(self, holder: str, ttl_s: float) -> bool:
        if self._current() != holder:
            return False
        self._until = self.clock() + ttl_s
        return True

    def release(self, holder: str) -> None:
        if self._current() == holder:
            self._holder = None

    def holder(self) -> str | None:
        return self._current()


class MemoryRoster(Roster):
    def __init__(self, clock=time.time):
        self.clock = clock
        self._members: dict[str, dict] = {}

    def beat(self, incarnation: str, info: dict, ttl_s: float) -> None:
        now = self.clock()
        self._members[incarnation] = {**info, "last_seen": now, "expires": now + ttl_s}

    def members(self) -> dict[str, dict]:
        now = self.clock()
        return {k: {**v, "alive": now < v["expires"]} for k, v in self._members.items()}

    def forget(self, incarnation: str) -> None:
        self._members.pop(incarnation, None)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
