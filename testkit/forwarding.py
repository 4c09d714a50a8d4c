"""An HTTP proxy on a free loopback port, for the tests' stand-ins in front of a real server.

The InfluxDB v2 bridge and the fault proxy are both this proxy with their own
`handle`: each request is read whole, handed to `handle(method, path, headers,
body)`, and its answer (status, headers, body) written back. `forward` passes
a request on to the upstream server unchanged.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from testkit.ports import free_port

Answer = tuple[int, dict[str, str], bytes]


class LoopbackProxy:
    # Request and reply headers passed on (lower case); the rest are the proxy's own business.
    REQUEST_HEADERS: tuple[str, ...] = ("content-type", "content-encoding", "accept")
    REPLY_HEADERS: tuple[str, ...] = ("content-type",)
    # The answer when the upstream server cannot be reached.
    UNREACHABLE_STATUS = 502
    UPSTREAM_TIMEOUT_S = 30

    def __init__(self, upstream: str, port: int | None = None):
        self.upstream = upstream.rstrip("/")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, content = proxy.handle(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_HEAD = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return self.forward(method, path, headers, body)

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        passed = {k: v for k, v in headers.items() if k.lower() in self.REQUEST_HEADERS}
        try:
            reply = requests.request(method, self.upstream + path, data=body, headers=passed,
                                     timeout=self.UPSTREAM_TIMEOUT_S)
        except requests.RequestException:
            return self.UNREACHABLE_STATUS, {}, b""
        kept = {k: v for k, v in reply.headers.items() if k.lower() in self.REPLY_HEADERS}
        return reply.status_code, kept, reply.content

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
