"""In-process API tests: `create_app(settings)` with Flask's and Flask-SocketIO's test clients.

No server process, no sockets: the whole service graph of the bootstrap runs
inside the test, so these tests take milliseconds each.
"""
from __future__ import annotations

import pytest

from app import create_app
from app.config import Settings

OPERATOR = "inproc-operator"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR}"}


def settings(tmp_path, **overrides) -> Settings:
    values = {"async_mode": "threading", "simulator": "off", "operator_tokens": f"ops={OPERATOR}",
              "instance_dir": tmp_path / "instance", **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture
def make_app(tmp_path):
    def make(**overrides):
        bootstrap_args = {k: overrides.pop(k) for k in ("clock", "history") if k in overrides}
        app = create_app(settings(tmp_path, **overrides), **bootstrap_args)
        app.testing = True
        return app
    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def bhs(app):
    """The service container the bootstrap built for `app`."""
    return app.extensions["bhs"]


@pytest.fixture
def live(app):
    socketio = app.extensions["socketio"]
    client = socketio.test_client(app, namespace="/live")
    yield client
    if client.is_connected("/live"):
        client.disconnect("/live")
