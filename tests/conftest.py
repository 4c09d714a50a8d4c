"""Shared fixtures: free loopback ports and a real server process.

The server is started exactly as a user starts it (`python run.py`), with its
settings in the environment, and stopped with SIGTERM at the end.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_TOKEN = "test-operator-token"
# How long a server may take to answer /api/health after it is started.
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python run.py` on a free port, with its output kept in a log file."""

    def __init__(self, tmp_path: Path, **env: str):
        self.port = int(env.pop("PORT", 0)) or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1", "PORT": str(self.port), "SIMULATOR": "off",
            "OPERATOR_TOKENS": f"ops={OPERATOR_TOKEN}",
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def start_server(tmp_path):
    """Start servers with given settings; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path, **env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One plain server shared by a module's tests."""
    proc = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def influx(tmp_path_factory):
    """A real influxd behind the test-only v2 write bridge (see tests/services.py)."""
    from tests.services import InfluxServer, V2WriteBridge
    server = InfluxServer(tmp_path_factory.mktemp("influxd")).start()
    bridge = V2WriteBridge(server.url).start()
    server.bridge = bridge
    yield server
    bridge.stop()
    server.stop()


@pytest.fixture
def influx_db(influx, request):
    """A fresh database (bucket) per test, and the server settings that use it."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    influx.query("", f'DROP DATABASE "{name}"')
    influx.query("", f'CREATE DATABASE "{name}"')
    return name, {"INFLUXDB_URL": influx.bridge.url, "INFLUXDB_TOKEN": "test-token",
                  "INFLUXDB_ORG": "bhs", "INFLUXDB_BUCKET": name}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    from tests.services import MosquittoBroker
    mosquitto = MosquittoBroker(tmp_path_factory.mktemp("mosquitto")).start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (Debian's) with an append-only file, per test."""
    from tests.cluster_services import RedisServer
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dynsec_broker(tmp_path_factory):
    """Mosquitto with the dynamic-security plugin; `url` carries its admin's login."""
    from tests.services import MosquittoBroker
    mosquitto = MosquittoBroker(tmp_path_factory.mktemp("mosquitto-dynsec"), dynsec=True).start()
    yield mosquitto
    mosquitto.stop()
