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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from testkit.ports import free_port

WRITE_PATHS = ("/api/v2/write", "/write")


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.max_bytes: int | None = None
        self.rewrite = None            # body -> body, to corrupt a line on its way
        self.seen: Counter[int] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                is_write = self.path.split("?")[0] in WRITE_PATHS
                status, extra, rewrite = proxy.fault_for(is_write, len(body))
                if status is not None:
                    proxy.count(status)
                    error = json.dumps({"error": f"fault proxy says {status}"}).encode()
                    self._reply(status, error, {"Content-Type": "application/json", **extra})
                    return
                if rewrite is not None and is_write:
                    body = rewrite(body)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "content-encoding", "accept", "authorization")}
                try:
                    reply = requests.request(method, proxy.upstream + self.path, data=body,
                                             headers=headers, timeout=30)
                except requests.RequestException:
                    proxy.count(502)
                    self._reply(502, b"", {})
                    return
                if is_write:
                    proxy.count(reply.status_code)
                passed = {k: v for k, v in reply.headers.items()
                          if k.lower() in ("content-type", "x-influxdb-version", "x-influxdb-build")}
                self._reply(reply.status_code, reply.content, passed)

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

            def do_HEAD(self):
                self._forward("HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
