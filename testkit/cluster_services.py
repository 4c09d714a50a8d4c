"""Redis and nginx for the cluster tests, from Debian's packages, on free loopback ports.

Like tests/services.py: installed with apt-get if missing, each with its own
config and data folder under the test's temporary directory, stopped at the end.
"""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from testkit.ports import free_port
from testkit.services import ensure_installed, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _accepting(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


class RedisServer:
    """redis-server with an append-only file, so a restart keeps the stream.

    `appendfsync everysec`, as deploy/ runs it: `always` fsyncs every XADD,
    which held ingest to about 65 batches a second here."""

    def __init__(self, folder: Path, port: int | None = None):
        self.binary = ensure_installed("redis-server", "redis-server")
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--protected-mode", "no", "--daemonize", "no"], stdout=log, stderr=log)
        wait_until(lambda: _accepting(self.port), 15, "redis-server")
        return self

    def stop(self) -> None:
        """SIGTERM: Redis finishes its append-only file and exits."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def nginx_config(listen_port: int, upstreams: list[str], folder: Path) -> str:
    """deploy/nginx.conf.template with its placeholders filled, for a foreground nginx."""
    template = (ROOT / "deploy" / "nginx.conf.template").read_text()
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
    return (template.replace("{{LISTEN}}", f"127.0.0.1:{listen_port}")
            .replace("{{UPSTREAMS}}", servers)
            .replace("{{PREFIX}}", str(folder)))


class NginxProxy:
    """nginx in the foreground, proxying to the instances with cookie stickiness."""

    def __init__(self, folder: Path, upstreams: list[str]):
        self.binary = ensure_installed("nginx", "nginx-light")
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "nginx.conf"
        self.config.write_text(nginx_config(self.port, upstreams, folder))
        self.process: subprocess.Popen | None = None

    def start(self) -> "NginxProxy":
        log = open(self.folder / "nginx.log", "ab")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config), "-p", str(self.folder),
                                         "-g", "daemon off;"], stdout=log, stderr=log)
        wait_until(lambda: _accepting(self.port), 15, "nginx")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
