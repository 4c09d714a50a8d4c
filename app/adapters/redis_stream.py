"""The shared batch log on a Redis Stream: XADD with a bounded MAXLEN, XREAD from a last id.

One entry per accepted batch: `o` is the accepting instance's incarnation,
`r` the batch's records as JSON. A log of readings turns each record into
`Reading.to_dict()` and back (`encode`/`decode`): with their `ts`, so a
re-write to history is the identical point, and the same JSON in every
version, so instances of two versions share one stream. The shared operator
state's log carries its JSON as it is. `MAXLEN ~` lets Redis trim whole
nodes, which is cheap.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import redis

from app.adapters.redis_client import UNAVAILABLE
from app.services.cluster.ports import BatchLog, LogEntry, LogUnavailable
from app.services.cluster.replication import as_is


def _entries(raw, decode: Callable[[Any], Any], skip_origin: str | None = None) -> list[LogEntry]:
    out = []
    for entry_id, fields in raw:
        origin = fields[b"o"].decode()
        # Our own batches are in our store already: don't pay for decoding them.
        records = [] if origin == skip_origin else [decode(r) for r in json.loads(fields[b"r"])]
        out.append(LogEntry(entry_id.decode(), origin, records))
    return out


class RedisBatchLog(BatchLog):
    def __init__(self, client: redis.Redis, reader: redis.Redis, key: str, maxlen: int, *,
                 encode: Callable[[Any], Any] = as_is, decode: Callable[[Any], Any] = as_is):
        self.client = client      # short commands
        self.reader = reader      # blocking XREAD
        self.key = key
        self.maxlen = maxlen
        self.encode = encode      # a record -> its JSON (Reading.to_dict for the readings' log)
        self.decode = decode      # and back

    def append(self, origin: str, records: list) -> str:
        encode = self.encode
        payload = json.dumps([encode(r) for r in records], separators=(",", ":"))
        try:
            entry_id = self.client.xadd(self.key, {"o": origin, "r": payload},
                                        maxlen=self.maxlen, approximate=True)
        except UNAVAILABLE as error:
            raise LogUnavailable(str(error)) from None
        return entry_id.decode()

    def read_after(self, last_id: str, count: int, block_s: float,
                   skip_origin: str | None = None) -> list[LogEntry]:
        try:
            reply = self.reader.xread({self.key: last_id}, count=count,
                                      block=int(block_s * 1000) if block_s > 0 else None)
        except UNAVAILABLE as error:
            raise LogUnavailable(str(error)) from None
        return _entries(reply[0][1], self.decode, skip_origin) if reply else []

    def range(self, start_id: str, count: int) -> list[LogEntry]:
        try:
            return _entries(self.client.xrange(self.key, min=start_id, max="+", count=count), self.decode)
        except UNAVAILABLE as error:
            raise LogUnavailable(str(error)) from None

    def info(self) -> dict:
        try:
            info = self.client.xinfo_stream(self.key)
        except redis.ResponseError:     # no such key: nothing accepted yet
            return {"length": 0, "first_id": None, "last_id": None, "trimmed": False}
        except UNAVAILABLE as error:
            raise LogUnavailable(str(error)) from None
        first = info.get("first-entry")
        last_id = info.get("last-generated-id")
        added = info.get("entries-added")   # Redis 7+
        return {"length": info["length"],
                "first_id": first[0].decode() if first else None,
                "last_id": last_id.decode() if isinstance(last_id, bytes) else last_id,
                "trimmed": added is not None and added > info["length"]}
