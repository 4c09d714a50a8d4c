"""A small HTTP proxy on loopback that answers InfluxDB writes badly on request.

It sits between the server and the real InfluxDB (through the test bridge).
`answer(status)` makes every write get that status (with an InfluxDB-style
JSON error); `too_large(max_bytes)` answers 413 to write bodies larger than
that and forwards the rest; `heal()` forwards everything again. Reads and
pings always pass through. It counts what it saw, so a test can tell that
the fault was really exercised.
"""
from __future__ import annotations

import json
import threading
from collections import Counter

from testkit.forwarding import LoopbackProxy

WRITE_PATHS = ("/api/v2/write", "/write")


class FaultProxy(LoopbackProxy):
    REQUEST_HEADERS = ("content-type", "content-encoding", "accept", "authorization")
    REPLY_HEADERS = ("content-type", "x-influxdb-version", "x-influxdb-build")

    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.max_bytes: int | None = None
        self.rewrite = None            # body -> body, to corrupt a line on its way
        self.seen: Counter[int] = Counter()
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        is_write = path.split("?")[0] in WRITE_PATHS
        status, extra, rewrite = self.fault_for(is_write, len(body))
        if status is not None:
            self.count(status)
            error = json.dumps({"error": f"fault proxy says {status}"}).encode()
            return status, {"Content-Type": "application/json", **extra}, error
        if rewrite is not None and is_write:
            body = rewrite(body)
        status, kept, content = self.forward(method, path, headers, body)
        if is_write or status == self.UNREACHABLE_STATUS:
            self.count(status)
        return status, kept, content

    def fault_for(self, is_write: bool, size: int):
        with self._lock:
            if not is_write:
                return None, {}, None
            if self.status is not None:
                return self.status, dict(self.headers), None
            if self.max_bytes is not None and size > self.max_bytes:
                return 413, {}, None
            return None, {}, self.rewrite

    def count(self, status: int) -> None:
        with self._lock:
            self.seen[status] += 1

    def answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.status, self.headers, self.max_bytes = status, headers or {}, None

    def too_large(self, max_bytes: int) -> None:
        with self._lock:
            self.status, self.max_bytes = None, max_bytes

    def heal(self) -> None:
        with self._lock:
            self.status, self.max_bytes, self.rewrite = None, None, None
