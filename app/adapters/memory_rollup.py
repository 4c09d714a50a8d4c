"""Bounded rollups for the embedded history: mean/min/max/count/last per time bucket.

A direct-mapped ring: bucket number b lives in slot b % capacity, so adding a
point is O(1), late points land in their own bucket while it is still held,
and the oldest buckets are overwritten as time moves on. 56 bytes a bucket.
"""
from __future__ import annotations

import math
from array import array


class RollupRing:
    __slots__ = ("width", "capacity", "_bucket", "_sum", "_count", "_min", "_max", "_last", "_last_ts")

    def __init__(self, width: float, capacity: int):
        self.width = width
        self.capacity = capacity
        self._bucket = array("q", [-1]) * capacity
        zeros = bytes(8 * capacity)
        self._sum, self._min, self._max = array("d", zeros), array("d", zeros), array("d", zeros)
        self._last, self._last_ts = array("d", zeros), array("d", zeros)
        self._count = array("q", zeros)

    def add(self, ts: float, value: float) -> None:
        bucket = int(ts // self.width)
        slot = bucket % self.capacity
        held = self._bucket[slot]
        if held > bucket:           # older than anything this ring still holds
            return
        if held != bucket:
            self._bucket[slot] = bucket
            self._sum[slot] = self._min[slot] = self._max[slot] = self._last[slot] = value
            self._last_ts[slot] = ts
            self._count[slot] = 1
            return
        self._sum[slot] += value
        self._count[slot] += 1
        if value < self._min[slot]:
            self._min[slot] = value
        if value > self._max[slot]:
            self._max[slot] = value
        if ts >= self._last_ts[slot]:
            self._last[slot], self._last_ts[slot] = value, ts

    def rows(self, start: float, stop: float) -> list[tuple[float, float, float, float, int, float]]:
        """(bucket start, mean, min, max, count, last) of the buckets that [start, stop) touches, oldest first."""
        first, last = math.floor(start / self.width), math.ceil(stop / self.width)
        rows = []
        for slot in range(self.capacity):
            bucket = self._bucket[slot]
            if first <= bucket < last:
                count = self._count[slot]
                rows.append((bucket * self.width, self._sum[slot] / count, self._min[slot],
                             self._max[slot], count, self._last[slot]))
        rows.sort()
        return rows

    def resized(self, capacity: int) -> "RollupRing":
        """A copy keeping the newest `capacity` buckets."""
        ring = RollupRing(self.width, capacity)
        held = sorted(slot for slot in range(self.capacity) if self._bucket[slot] >= 0)
        for slot in sorted(held, key=lambda s: self._bucket[s])[-capacity:]:
            target = self._bucket[slot] % capacity
            ring._bucket[target] = self._bucket[slot]
            for name in ("_sum", "_min", "_max", "_last", "_last_ts", "_count"):
                getattr(ring, name)[target] = getattr(self, name)[slot]
        return ring
