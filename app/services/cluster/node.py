"""This instance's part in the cluster: start-up rebuild, readiness, roster, health.

Start-up, in order, before `/api/ready` answers 200:
1. rebuild the live store from the shared log (retrying until Redis answers);
   where the log was trimmed, the latest readings come from history instead;
   then the shared operator state (alarms, controls, plan, decisions) from its log;
2. start applying the log as it grows, and the outbox of unsent batches;
3. start competing for the leader lease and beating in the roster;
4. wait for the extra checks (the MQTT session drained, see app/adapters/mqtt.py).

The leader also picks up after dead members: what a member accepted in its
last HISTORY_REWRITE_S is written to history again, because a killed process
loses the history it had buffered but not yet written.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Callable

from app.domain.records import Reading
from app.services.cluster.leadership import Leadership
from app.services.cluster.ports import LogUnavailable, Roster
from app.services.cluster.replication import Replicator

logger = logging.getLogger(__name__)

# Roster heartbeat period (s), and how long a member stays alive without one.
BEAT_S = 1.0
MEMBER_TTL_S = 5.0
# History a dead member may not have written yet: its write buffer flushes
# every INFLUX_FLUSH_MS (100 ms) and spills to disk while InfluxDB is down,
# so 30 s covers a slow write with a wide margin.
HISTORY_REWRITE_S = 30.0
# Back-off while Redis is unreachable at start-up (s).
BOOT_RETRY_S = 1.0


def new_incarnation(instance_id: str) -> str:
    """Names this process: the instance id plus a nonce, new on every start."""
    return f"{instance_id}.{uuid.uuid4().hex[:8]}"


def instance_of(incarnation: str | None) -> str | None:
    return incarnation.rsplit(".", 1)[0] if incarnation else None


class ClusterNode:
    def __init__(self, instance_id: str, incarnation: str, replicator: Replicator,
                 leadership: Leadership, roster: Roster, rewrite_history: Callable[[list[Reading]], None],
                 spawn: Callable, sleep: Callable[[float], None],
                 fill_from_history: Callable[[], int] = lambda: 0, rooms=None,
                 state: Replicator | None = None,
                 clock: Callable[[], float] = time.time):
        self.instance_id = instance_id
        self.incarnation = incarnation
        self.replicator = replicator
        self.leadership = leadership
        self.roster = roster
        self.rewrite_history = rewrite_history
        self.fill_from_history = fill_from_history
        self.rooms = rooms          # SharedRooms, or None
        self.state = state          # the replicator of shared operator state, or None
        self.spawn = spawn
        self.sleep = sleep
        self.clock = clock
        self.checks: list[tuple[str, Callable[[], bool]]] = []
        self.rebuilt = False
        self.rebuilt_batches = 0
        self.roster_up = True
        # What health shows, refreshed every beat: a probe never waits on Redis.
        self._members: dict[str, dict] = {}
        self._holder: str | None = None
        self._lag: dict = {}
        self._running = False

    def add_check(self, name: str, check: Callable[[], bool]) -> None:
        """Something else that must hold before this instance reports ready."""
        self.checks.append((name, check))

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.spawn(self._boot)

    def stop(self) -> None:
        self._running = False
        self.leadership.stop()
        self.replicator.stop()
        if self.state is not None:
            self.state.stop()
        if self.rooms is not None:
            self.rooms.stop()
        try:
            self.roster.forget(self.incarnation)
        except Exception:    # Redis away at shutdown: our alive key expires by itself
            pass

    def _boot(self) -> None:
        while self._running:
            try:
                trimmed = self.replicator.log.info()["trimmed"]
                self.rebuilt_batches = self.replicator.rebuild()
                if self.state is not None:
                    self.state.rebuild()
                break
            except LogUnavailable as error:
                logger.warning("waiting for the shared log to rebuild live state: %s", error)
                self.sleep(BOOT_RETRY_S)
        if not self._running:
            return
        filled = self.fill_from_history() if trimmed else 0
        logger.info("live state rebuilt from %d logged batches%s", self.rebuilt_batches,
                    f" and {filled} readings from history" if trimmed else "")
        self.rebuilt = True
        self.replicator.start()
        if self.state is not None:
            self.state.start()
        self.leadership.start()
        if self.rooms is not None:
            self.rooms.start()
        self.spawn(self._roster_loop)

    def _roster_loop(self) -> None:
        info = {"instance_id": self.instance_id, "started_at": self.clock()}
        while self._running:
            try:
                self.roster.beat(self.incarnation, {**info, "ready": self.ready}, MEMBER_TTL_S)
                self._members = self.roster.members()
                self._holder = self.leadership.lease.holder()
                self._lag = self.replicator.lag()
                self.roster_up = True
                if self.leadership.is_leader:
                    self._pick_up_after_dead()
            except Exception as error:   # Redis away: keep serving, try again next beat
                if self.roster_up:
                    logger.warning("cluster roster unreachable: %s", error)
                self.roster_up = False
            self.sleep(BEAT_S)

    def _pick_up_after_dead(self) -> None:
        for incarnation, member in self._members.items():
            if member["alive"] or incarnation == self.incarnation:
                continue
            since_ms = int((member.get("last_seen", 0) - HISTORY_REWRITE_S) * 1000)
            written = self.replicator.rewrite(incarnation, since_ms, self.rewrite_history)
            logger.info("member %s left: wrote its last %ss of readings (%d) to history again",
                        incarnation, HISTORY_REWRITE_S, written)
            self.roster.forget(incarnation)

    # -- views -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.rebuilt and all(check() for _, check in self.checks)

    def waiting_for(self) -> list[str]:
        waiting = [] if self.rebuilt else ["live state rebuild from the shared log"]
        return waiting + [name for name, check in self.checks if not check()]

    def health(self) -> dict:
        holder, lag = self._holder, self._lag
        redis_up = self.replicator.log_up and self.roster_up and lag.get("ms_behind") is not None
        return {
            "instance_id": self.instance_id,
            "incarnation": self.incarnation,
            "ready": self.ready,
            "leader": self.instance_id if self.leadership.is_leader else instance_of(holder),
            "is_leader": self.leadership.is_leader,
            "members": sorted(
                ({"instance_id": m.get("instance_id"), "incarnation": k, "alive": m["alive"],
                  "ready": m.get("ready", False)} for k, m in self._members.items()),
                key=lambda m: (m["instance_id"] or "", m["incarnation"])),
            "redis": "ok" if redis_up else "down",
            "stream": lag,
        }
