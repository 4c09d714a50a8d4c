"""A bounded on-disk spool of line-protocol batches that could not be written.

influxdb-client keeps failed batches only in memory and drops them once its
retries run out; the spool keeps them across outages and restarts. Each batch
is one file, written to a temporary name and renamed, so a crash never leaves
half a batch. Oldest files are replayed first; a file's name starts with the
time it was held, so the age of the oldest held point survives a restart.
Past `max_bytes` the oldest batches are dropped (and counted), so a long
outage cannot fill the disk.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

SUFFIX = ".lp"


class DiskSpool:
    def __init__(self, folder: Path, max_bytes: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.dropped_points = 0
        self._seq = itertools.count()
        self._lock = threading.Lock()
        for stale in self.folder.glob("*.tmp"):   # a crash mid-write
            stale.unlink(missing_ok=True)
        self._sizes = {p: p.stat().st_size for p in self.folder.glob("*" + SUFFIX)}
        self._points = {p: None for p in self._sizes}   # counted lazily

    def append(self, data: bytes, points: int) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}"
        self._write(self.folder / (name + SUFFIX), data, points)
        self._enforce_limit()

    def replace(self, path: Path, data: bytes, points: int) -> None:
        """What is left of a held batch after part of it went through; keeps its place."""
        self._write(path, data, points)

    def _write(self, final: Path, data: bytes, points: int) -> None:
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(final)
        with self._lock:
            self._sizes[final] = len(data)
            self._points[final] = points

    def oldest(self) -> tuple[Path, bytes] | None:
        with self._lock:
            if not self._sizes:
                return None
            path = min(self._sizes)
        try:
            return path, path.read_bytes()
        except FileNotFoundError:
            self.remove(path)
            return self.oldest()

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        with self._lock:
            self._sizes.pop(path, None)
            self._points.pop(path, None)

    def pending_points(self) -> int:
        with self._lock:
            paths = list(self._points)
        total = 0
        for path in paths:
            count = self._points.get(path)
            if count is None:   # spooled by an earlier run
                try:
                    count = path.read_bytes().count(b"\n") + 1
                except FileNotFoundError:
                    count = 0
                with self._lock:
                    if path in self._points:
                        self._points[path] = count
            total += count
        return total

    def oldest_held_at(self) -> float | None:
        """Epoch seconds when the oldest batch still held was put here."""
        with self._lock:
            if not self._sizes:
                return None
            path = min(self._sizes)
        try:
            return int(path.name.split("-", 1)[0]) / 1e9
        except ValueError:   # not one of ours: fall back to the file's own time
            return path.stat().st_mtime if path.exists() else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    def pending_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def _enforce_limit(self) -> None:
        while self.pending_bytes() > self.max_bytes:
            with self._lock:
                path = min(self._sizes)
                points = self._points.get(path) or 0
            logger.error("history spool over %d bytes: dropping oldest batch %s (%d points)",
                         self.max_bytes, path.name, points)
            self.dropped_points += points
            self.remove(path)
