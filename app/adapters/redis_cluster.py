"""Builds this instance's cluster node on Redis; called by the composition root.

Keys, under REDIS_PREFIX (default `bhs`): `<p>:readings` the stream of
accepted batches, `<p>:state` the stream of operator-state changes, `<p>:leader` the lease, `<p>:members` and `<p>:alive:*` the
roster, `<p>:rooms` the station rooms each instance's viewers are in. The Socket.IO message queue and the rate limiter use the same Redis
with their own keys.
"""
from __future__ import annotations

from typing import Callable

from app.adapters.redis_client import blocking_client, command_client
from app.adapters.redis_lease import RedisLease, RedisRooms, RedisRoster
from app.adapters.redis_stream import RedisBatchLog
from app.adapters.spool import DiskSpool
from app.config import Settings
from app.domain.records import Reading
from app.services.cluster.leadership import Leadership
from app.services.cluster.node import ClusterNode, new_incarnation
from app.services.cluster.replication import READ_BLOCK_S, Outbox, Replicator
from app.services.cluster.rooms import SharedRooms
from app.services.cluster.shared_state import SharedState

# Operator-state changes kept in their stream: alarm transitions, controls,
# plans and decisions come at most a few per second.
STATE_MAXLEN = 20_000


def build_cluster(settings: Settings, *, apply: Callable[[list[Reading], str], None],
                  rewrite_history: Callable[[list[Reading]], None], spawn: Callable,
                  sleep: Callable[[float], None],
                  local_rooms: Callable[[], set[str]] = set, shared: SharedState | None = None,
                  fill_from_history: Callable[[], int] = lambda: 0) -> ClusterNode:
    url, prefix = settings.redis_url, settings.redis_prefix
    client = command_client(url)
    instance = settings.cluster_id
    incarnation = new_incarnation(instance)
    # The readings' log and outbox carry each record as the JSON every version reads.
    log = RedisBatchLog(client, blocking_client(url, READ_BLOCK_S), f"{prefix}:readings",
                        settings.stream_maxlen, encode=Reading.to_dict, decode=Reading.from_dict)
    outbox = Outbox(DiskSpool(settings.instance_dir / "redis-outbox", settings.spool_max_bytes),
                    encode=Reading.to_dict, decode=Reading.from_dict)
    replicator = Replicator(log, outbox, incarnation, apply, spawn, sleep)
    leadership = Leadership(RedisLease(client, f"{prefix}:leader"), incarnation,
                            settings.leader_lease_s, spawn, sleep)
    state = None
    if shared is not None:
        state_log = RedisBatchLog(client, blocking_client(url, READ_BLOCK_S), f"{prefix}:state",
                                  STATE_MAXLEN)
        state_outbox = Outbox(DiskSpool(settings.instance_dir / "redis-state-outbox",
                                        settings.spool_max_bytes))
        state = shared.replicator = Replicator(state_log, state_outbox, incarnation, shared.apply,
                                               spawn, sleep)
    return ClusterNode(instance, incarnation, replicator, leadership,
                       RedisRoster(client, prefix), rewrite_history, spawn, sleep,
                       fill_from_history=fill_from_history,
                       rooms=SharedRooms(RedisRooms(client, prefix), incarnation, local_rooms, spawn, sleep),
                       state=state)
