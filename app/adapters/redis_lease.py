"""The leader lease, the member roster and the station-room directory on Redis.

The lease is redis-py's `Lock` (SET NX PX to take it, a compare-and-PEXPIRE
script to renew it, compare-and-DEL to release it), with the holder's name as
its token so anyone can read who leads. The roster is one hash of incarnation
-> info, plus one `alive` key per incarnation that expires unless its
instance keeps beating.
"""
from __future__ import annotations

import json
import time

import redis
from redis.exceptions import LockError

from app.adapters.redis_client import UNAVAILABLE
from app.services.cluster.ports import Lease, Roster


class RedisLease(Lease):
    def __init__(self, client: redis.Redis, key: str):
        self.client = client
        self.key = key
        self._locks: dict[float, redis.lock.Lock] = {}

    def _lock(self, ttl_s: float):
        lock = self._locks.get(ttl_s)
        if lock is None:
            lock = self._locks[ttl_s] = self.client.lock(self.key, timeout=ttl_s, thread_local=False)
        return lock

    def acquire(self, holder: str, ttl_s: float) -> bool:
        try:
            return bool(self._lock(ttl_s).acquire(blocking=False, token=holder))
        except UNAVAILABLE:
            return False

    def renew(self, holder: str, ttl_s: float) -> bool:
        lock = self._lock(ttl_s)
        lock.local.token = holder.encode()
        try:
            lock.reacquire()     # resets the TTL to ttl_s if the token still matches
            return True
        except (LockError, *UNAVAILABLE):
            return False

    def release(self, holder: str) -> None:
        lock = self._lock(next(iter(self._locks), 1.0))
        lock.local.token = holder.encode()
        try:
            lock.release()
        except (LockError, *UNAVAILABLE):
            pass

    def holder(self) -> str | None:
        try:
            value = self.client.get(self.key)
        except UNAVAILABLE:
            return None
        return value.decode() if value else None


class RedisRoster(Roster):
    def __init__(self, client: redis.Redis, prefix: str, clock=time.time):
        self.client = client
        self.hash = f"{prefix}:members"
        self.alive_prefix = f"{prefix}:alive:"
        self.clock = clock

    def beat(self, incarnation: str, info: dict, ttl_s: float) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self.hash, incarnation, json.dumps({**info, "last_seen": self.clock()}))
        pipe.set(self.alive_prefix + incarnation, "1", px=int(ttl_s * 1000))
        pipe.execute()

    def members(self) -> dict[str, dict]:
        raw = self.client.hgetall(self.hash)
        names = [k.decode() for k in raw]
        alive = self.client.mget([self.alive_prefix + n for n in names]) if names else []
        return {name: {**json.loads(raw[name.encode()]), "alive": flag is not None}
                for name, flag in zip(names, alive)}

    def forget(self, incarnation: str) -> None:
        pipe = self.client.pipeline()
        pipe.hdel(self.hash, incarnation)
        pipe.delete(self.alive_prefix + incarnation)
        pipe.execute()


class RedisRooms:
    """The station-room directory: one hash field per incarnation, its nodes and when."""

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.hash = f"{prefix}:rooms"

    def put(self, incarnation: str, nodes: list[str], at: float) -> None:
        self.client.hset(self.hash, incarnation, json.dumps({"nodes": nodes, "at": at}))

    def entries(self) -> dict[str, tuple[list[str], float]]:
        out = {}
        for key, raw in self.client.hgetall(self.hash).items():
            value = json.loads(raw)
            out[key.decode()] = (value["nodes"], value["at"])
        return out

    def forget(self, incarnation: str) -> None:
        self.client.hdel(self.hash, incarnation)
