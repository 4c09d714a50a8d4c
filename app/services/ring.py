"""A fixed-capacity ring of (timestamp, value) pairs in two float arrays.

16 bytes a point, against about 112 for a deque of tuples: at 20,000 sensors
that is the difference between tens and hundreds of megabytes.
"""
from __future__ import annotations

from array import array


class PointRing:
    __slots__ = ("capacity", "_ts", "_values", "_next", "_size")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._ts = array("d", bytes(8 * capacity))
        self._values = array("d", bytes(8 * capacity))
        self._next = 0
        self._size = 0

    def append(self, ts: float, value: float) -> None:
        i = self._next
        self._ts[i] = ts
        self._values[i] = value
        self._next = (i + 1) % self.capacity
        if self._size < self.capacity:
            self._size += 1

    def __len__(self) -> int:
        return self._size

    def points(self) -> list[tuple[float, float]]:
        """Oldest first."""
        start = (self._next - self._size) % self.capacity
        order = [(start + k) % self.capacity for k in range(self._size)]
        return [(self._ts[i], self._values[i]) for i in order]

    def resized(self, capacity: int) -> "PointRing":
        """A copy keeping the newest `capacity` points."""
        ring = PointRing(capacity)
        for ts, value in self.points()[-capacity:]:
            ring.append(ts, value)
        return ring
