"""Roles over HTTP and Socket.IO, token handling, rate limits and browser headers."""
from __future__ import annotations

import hashlib
import os

import pytest
import requests
import socketio

from testkit.server import ServerProcess

DEVICE, OPERATOR, VIEWER = "dev-secret-1", "op-secret-1", "view-secret-1"
HASHED = "op-secret-2"


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    digest = hashlib.sha256(HASHED.encode()).hexdigest()
    proc = ServerProcess(tmp_path_factory.mktemp("locked"), DEVICE_KEYS=f"pump7={DEVICE}",
                         OPERATOR_TOKENS=f"asha={OPERATOR},ravi=sha256:{digest}",
                         VIEWER_TOKENS=f"wall={VIEWER}", CORS_ORIGINS="https://ops.example.org",
                         INGEST_RATE_LIMIT="30 per second").start()
    yield proc
    proc.stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


READING = {"sensor_id": "sec-1", "value": 1.0}
CONTROL = {"action": "set_mode", "value": "manual"}


@pytest.mark.parametrize("method, path, body, allowed, refused", [
    ("post", "/api/ingest", READING, DEVICE, OPERATOR),
    ("post", "/api/control", CONTROL, OPERATOR, VIEWER),
    ("get", "/api/controls", None, OPERATOR, DEVICE),
    ("get", "/api/logs", None, OPERATOR, VIEWER),
    ("post", "/api/simulation/stop", None, OPERATOR, VIEWER),
    ("get", "/api/sensors", None, VIEWER, DEVICE),
    ("get", "/api/routing", None, VIEWER, DEVICE),
    ("get", "/metrics", None, VIEWER, DEVICE),
])
def test_each_role_over_http(locked, method, path, body, allowed, refused):
    call = getattr(requests, method)
    kwargs = {"json": body} if body is not None else {}
    none = call(locked.url + path, **kwargs)
    assert none.status_code == 401 and none.json()["error"]["code"] == "unauthorized"
    wrong_role = call(locked.url + path, headers=bearer(refused), **kwargs)
    assert wrong_role.status_code == 403 and wrong_role.json()["error"]["code"] == "forbidden"
    unknown = call(locked.url + path, headers=bearer("nobody"), **kwargs)
    assert unknown.status_code == 401
    ok = call(locked.url + path, headers=bearer(allowed), **kwargs)
    assert ok.status_code in (200, 201), ok.text


def test_operators_may_read_and_health_stays_open(locked):
    assert requests.get(locked.url + "/api/sensors", headers=bearer(OPERATOR)).status_code == 200
    assert requests.get(locked.url + "/api/health").status_code == 200


def test_hashed_token_works_and_only_labels_are_audited(locked):
    reply = requests.post(locked.url + "/api/control", headers=bearer(HASHED), json=CONTROL)
    assert reply.status_code == 200 and reply.json()["control"]["operator"] == "ravi"
    audit = requests.get(locked.url + "/api/controls", headers=bearer(OPERATOR)).json()["controls"]
    assert audit[0]["operator"] == "ravi" and audit[0]["source_ip"] == "127.0.0.1"
    text = str(audit) + locked.log() + str(requests.get(locked.url + "/api/logs?level=DEBUG",
                                                        headers=bearer(OPERATOR)).json())
    for secret in (DEVICE, OPERATOR, VIEWER, HASHED):
        assert secret not in text


def connect(url, namespace, token):
    client = socketio.Client(reconnection=False)
    client.connect(url, namespaces=[namespace], auth={"token": token} if token else None, wait_timeout=5)
    return client


@pytest.mark.parametrize("namespace, allowed, refused", [("/live", VIEWER, DEVICE), ("/control", OPERATOR, VIEWER)])
def test_each_role_over_socketio(locked, namespace, allowed, refused):
    for token in (None, refused, "nobody"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(locked.url, namespace, token)
    client = connect(locked.url, namespace, allowed)
    try:
        if namespace == "/control":
            assert client.call("control", CONTROL, namespace="/control", timeout=5)["ok"] is True
    finally:
        client.disconnect()


def test_flood_from_one_key_is_limited_while_another_gets_through(locked):
    codes = [requests.post(locked.url + "/api/ingest", headers=bearer(DEVICE), json=READING).status_code
             for _ in range(60)]
    assert 429 in codes and 201 in codes
    limited = requests.post(locked.url + "/api/ingest", headers=bearer(DEVICE), json=READING)
    if limited.status_code == 429:
        assert int(limited.headers["Retry-After"]) >= 0
        assert limited.json()["error"]["code"] == "rate_limited"
    # Requests without a valid key are limited per address, separately from the device.
    other = requests.post(locked.url + "/api/ingest", json=READING)
    assert other.status_code == 401


def test_cors_allow_list_and_security_headers(locked):
    allowed = requests.options(locked.url + "/api/sensors", headers={
        "Origin": "https://ops.example.org", "Access-Control-Request-Method": "GET"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ops.example.org"
    other = requests.options(locked.url + "/api/sensors", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in other.headers
    page = requests.get(locked.url + "/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    with pytest.raises(socketio.exceptions.ConnectionError):
        client = socketio.Client(reconnection=False)
        client.connect(locked.url, namespaces=["/live"], auth={"token": VIEWER},
                       headers={"Origin": "https://evil.example.com"}, wait_timeout=5)


def test_generated_operator_token_is_printed_once_kept_and_works(tmp_path):
    server = ServerProcess(tmp_path, OPERATOR_TOKENS="").start()   # empty means unset
    try:
        lines = [line for line in server.log().splitlines() if "generated an operator token" in line]
        assert len(lines) == 1
        token = lines[0].rsplit(" ", 1)[1]
        assert (tmp_path / "instance" / "operator_token").read_text().strip() == token
        assert requests.post(server.url + "/api/control", headers=bearer(token), json=CONTROL).status_code == 200
        assert requests.post(server.url + "/api/control", json=CONTROL).status_code == 401
        # Only its documented header: an operator token in X-API-Key is not accepted.
        refused = requests.post(server.url + "/api/control", headers={"X-API-Key": token}, json=CONTROL)
        assert refused.status_code == 401 and "X-API-Key is for device keys" in refused.json()["error"]["message"]
        # A restart keeps the token and does not print it again; no deprecation warning at start.
        server.stop()
        server.start()
        assert requests.post(server.url + "/api/control", headers=bearer(token), json=CONTROL).status_code == 200
        log = server.log()
        assert sum("generated an operator token" in line for line in log.splitlines()) == 1
        assert "DeprecationWarning" not in log
        explained = sum("eventlet" in line and "maintenance" in line for line in log.splitlines())
        assert explained == (2 if os.environ.get("ASYNC_MODE", "eventlet") == "eventlet" else 0)
    finally:
        server.stop()


def test_metrics_and_docs(server):
    metrics = requests.get(server.url + "/metrics").text
    for name in ("bhs_readings_total", "bhs_history_points", "bhs_mqtt_connected", "bhs_live_clients",
                 "bhs_broadcast_frames_total", "bhs_routing_solve_seconds", "bhs_active_alerts"):
        assert name in metrics
    spec = requests.get(server.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/ingest", "/api/sensors", "/api/control", "/api/history/{sensor_id}"} <= set(spec["paths"])
    assert set(spec["components"]["securitySchemes"]) == {"operator", "device", "viewer", "admin"}
    assert "422" in spec["paths"]["/api/ingest"]["post"]["responses"]
    docs = requests.get(server.url + "/docs").text
    assert "/static/vendor/swagger-ui-bundle.js" in docs and "unpkg" not in docs and "cdn" not in docs
