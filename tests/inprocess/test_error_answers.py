"""Every error answer, HTTP or a Socket.IO acknowledgement, is the one envelope of app/errors.py."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.inprocess.conftest import OPERATOR, OPERATOR_HEADERS

APP = Path(__file__).resolve().parents[2] / "app"


def hand_made_errors(path: Path) -> list[int]:
    """Lines of `path` that build an error body by hand: `{"error": {...}}` or `error={...}`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            found += [node.lineno for key, value in zip(node.keys, node.values)
                      if isinstance(key, ast.Constant) and key.value == "error" and isinstance(value, ast.Dict)]
        elif isinstance(node, ast.keyword) and node.arg == "error" and isinstance(node.value, ast.Dict):
            found.append(node.value.lineno)
    return found


def assert_envelope(body: dict, code: str) -> None:
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)


@pytest.fixture
def app(make_app):
    return make_app(max_body_bytes=4096, device_keys="dev-key")


@pytest.mark.parametrize("method, path, kwargs, status, code", [
    ("post", "/api/control", {"data": "{nope", "content_type": "application/json",
                              "headers": OPERATOR_HEADERS}, 400, "bad_request"),
    ("post", "/api/control", {"json": {"action": "set_mode", "value": "auto"}}, 401, "unauthorized"),
    ("post", "/api/control", {"json": {"action": "set_mode", "value": "auto"},
                              "headers": {"Authorization": "Bearer dev-key"}}, 403, "forbidden"),
    ("get", "/api/no-such-thing", {}, 404, "not_found"),
    ("get", "/api/sensors/never-seen", {}, 404, "not_found"),
    ("post", "/api/decisions/d-none/apply", {"headers": OPERATOR_HEADERS}, 404, "not_found"),
    ("delete", "/api/health", {}, 405, "method_not_allowed"),
    ("post", "/api/ingest", {"data": "x" * 5000, "content_type": "application/json",
                             "headers": {"X-API-Key": "dev-key"}}, 413, "payload_too_large"),
    ("post", "/api/ingest", {"data": "value=1", "headers": {"X-API-Key": "dev-key"}}, 415,
     "unsupported_media_type"),
    ("post", "/api/ingest", {"json": {"sensor_id": "e-1", "value": "high"},
                             "headers": {"X-API-Key": "dev-key"}}, 422, "validation_error"),
    ("post", "/api/control", {"json": {"action": "fly"}, "headers": OPERATOR_HEADERS}, 422, "validation_error"),
    ("get", "/api/decisions?limit=0", {}, 422, "validation_error"),
])
def test_http_errors_are_the_envelope(client, method, path, kwargs, status, code):
    reply = getattr(client, method)(path, **kwargs)
    assert reply.status_code == status, reply.data[:300]
    assert reply.content_type.startswith("application/json")
    assert_envelope(reply.get_json(), code)


def test_control_acks_errors_in_the_envelope(app):
    socketio = app.extensions["socketio"]
    client = socketio.test_client(app, namespace="/control", auth={"token": OPERATOR})
    try:
        invalid = client.emit("control", {"action": "fly"}, namespace="/control", callback=True)
        assert_envelope(invalid, "validation_error")
        assert invalid["error"]["details"] and invalid["error"]["details"][0]["field"]
        unknown = client.emit("control", {"action": "set_valve", "target": "NO_SUCH_LINK", "value": 50},
                              namespace="/control", callback=True)
        assert "ok" not in unknown
        assert unknown["error"]["code"] in ("validation_error", "not_found")
        assert_envelope(unknown, unknown["error"]["code"])
        applied = client.emit("control", {"action": "set_mode", "value": "manual"}, namespace="/control",
                              callback=True)
        assert applied["ok"] is True
    finally:
        client.disconnect("/control")


def test_live_subscribe_refusals_carry_the_envelope(live):
    refused = live.emit("subscribe", {"nodes": "ZONE_A"}, namespace="/live", callback=True)
    assert refused["ok"] is False
    assert_envelope(refused, "validation_error")
    assert refused["error"]["details"] == [{"field": "nodes", "message": refused["error"]["details"][0]["message"]}]


def test_no_error_body_is_built_outside_the_one_builder():
    hand_made = [f"{path.relative_to(APP.parent)}:{line}" for path in APP.rglob("*.py")
                 if path != APP / "errors.py" for line in hand_made_errors(path)]
    assert hand_made == []
