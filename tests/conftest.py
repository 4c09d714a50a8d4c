"""Shared fixtures: real server processes and services, from testkit/.

The server is started exactly as a user starts it (`python run.py`), with its
settings in the environment, and stopped with SIGTERM at the end.
"""
from __future__ import annotations

import pytest

from testkit.server import OPERATOR_TOKEN, ServerProcess  # noqa: F401  (OPERATOR_TOKEN: for older imports)


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
    """A real influxd behind the test-only v2 write bridge (see testkit/services.py)."""
    from testkit.services import InfluxServer, V2WriteBridge
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
    from testkit.services import MosquittoBroker
    mosquitto = MosquittoBroker(tmp_path_factory.mktemp("mosquitto")).start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (Debian's) with an append-only file, per test."""
    from testkit.cluster_services import RedisServer
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dynsec_broker(tmp_path_factory):
    """Mosquitto with the dynamic-security plugin; `url` carries its admin's login."""
    from testkit.services import MosquittoBroker
    mosquitto = MosquittoBroker(tmp_path_factory.mktemp("mosquitto-dynsec"), dynsec=True).start()
    yield mosquitto
    mosquitto.stop()
