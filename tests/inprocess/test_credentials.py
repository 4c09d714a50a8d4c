"""Credentials: checked once per request, and read only from their documented headers.

Device keys come in X-API-Key or `Authorization: Bearer`; operator, viewer
and admin tokens in Bearer only.
"""
from __future__ import annotations

import pytest

import app.api.common as common
import app.security as security

DEVICE, OPERATOR, VIEWER, ADMIN = "dev-key", "op-token", "view-token", "admin-token"
TOKENS = {"device_keys": f"meter={DEVICE}", "operator_tokens": f"ops={OPERATOR}",
          "viewer_tokens": f"eyes={VIEWER}", "admin_tokens": f"root={ADMIN}"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(make_app):
    return make_app(**TOKENS)


@pytest.fixture
def counted(monkeypatch):
    """How many credential checks, and how many token digests, each request made."""
    calls = {"checks": 0, "digests": 0}
    check, digest = common.check_credentials, security.digest

    def counting_check(*args, **kwargs):
        calls["checks"] += 1
        return check(*args, **kwargs)

    def counting_digest(token):
        calls["digests"] += 1
        return digest(token)

    monkeypatch.setattr(common, "check_credentials", counting_check)
    monkeypatch.setattr(security, "digest", counting_digest)

    def reset():
        calls.update(checks=0, digests=0)
        return calls
    return reset


@pytest.mark.parametrize("method, path, body, headers, status", [
    # The rate limit and the role check of ingest and control share the one check.
    ("post", "/api/ingest", {"sensor_id": "c-1", "value": 1}, {"X-API-Key": DEVICE}, 201),
    ("post", "/api/ingest", {"sensor_id": "c-1", "value": 1}, bearer(DEVICE), 201),
    ("post", "/api/sensors", [{"sensor_id": "c-1", "value": 1}], {"X-API-Key": DEVICE}, 202),
    ("post", "/api/control", {"action": "set_mode", "value": "manual"}, bearer(OPERATOR), 200),
    ("post", "/api/admin/reset", None, bearer(ADMIN), 200),
    ("get", "/api/sensors", None, bearer(VIEWER), 200),
    ("get", "/api/controls", None, bearer(OPERATOR), 200),
    ("get", "/metrics", None, bearer(VIEWER), 200),
    ("post", "/api/control", {"action": "set_mode", "value": "manual"}, bearer(VIEWER), 403),
    ("post", "/api/ingest", {"sensor_id": "c-1", "value": 1}, {"X-API-Key": "nobody"}, 401),
])
def test_one_credential_check_per_request(client, counted, method, path, body, headers, status):
    calls = counted()
    reply = getattr(client, method)(path, json=body, headers=headers)
    assert reply.status_code == status, reply.get_json()
    assert calls == {"checks": 1, "digests": 1}


def test_a_registered_devices_token_is_checked_once_too(client, counted):
    made = client.post("/api/devices", headers=bearer(ADMIN), json={
        "id": "meter-7", "name": "Meter 7", "kind": "meter",
        "telemetry": {"flow": {"sensor_id": "m7-flow", "metric": "flow"}}})
    assert made.status_code == 201, made.get_json()
    calls = counted()
    reply = client.post("/api/ingest", json={"sensor_id": "m7-flow", "value": 2.5},
                        headers={"X-API-Key": made.get_json()["token"]})
    assert reply.status_code == 201, reply.get_json()
    assert calls["checks"] == 1


def test_nothing_is_checked_where_no_credential_is_needed(client, counted):
    calls = counted()
    assert client.get("/api/health", headers=bearer(OPERATOR)).status_code == 200
    assert calls["checks"] == 0


@pytest.mark.parametrize("method, path, body, token, role", [
    ("post", "/api/control", {"action": "set_mode", "value": "manual"}, OPERATOR, "operator"),
    ("post", "/api/admin/reset", None, ADMIN, "admin"),
    ("get", "/api/sensors", None, VIEWER, "viewer"),
])
def test_operator_viewer_and_admin_tokens_count_only_as_bearer(client, method, path, body, token, role):
    reply = getattr(client, method)(path, json=body, headers={"X-API-Key": token})
    error = reply.get_json()["error"]
    assert reply.status_code == 401 and error["code"] == "unauthorized"
    assert f"{role} credentials required" in error["message"] and "X-API-Key is for device keys only" in error["message"]
    assert getattr(client, method)(path, json=body, headers=bearer(token)).status_code == 200


def test_device_keys_count_in_either_header_and_x_api_key_comes_first(client):
    body = {"sensor_id": "h-1", "value": 1}
    assert client.post("/api/ingest", json=body, headers={"X-API-Key": DEVICE}).status_code == 201
    assert client.post("/api/ingest", json=body, headers=bearer(DEVICE)).status_code == 201
    # A wrong X-API-Key is not saved by a right Bearer key: the key header is the one read.
    both = client.post("/api/ingest", json=body, headers={"X-API-Key": "wrong", **bearer(DEVICE)})
    assert both.status_code == 401


def test_a_known_token_of_another_role_is_403_an_unknown_one_401(client):
    body = {"sensor_id": "r-1", "value": 1}
    operator_at_ingest = client.post("/api/ingest", json=body, headers=bearer(OPERATOR))
    assert operator_at_ingest.status_code == 403
    assert operator_at_ingest.get_json()["error"]["code"] == "forbidden"
    assert client.post("/api/ingest", json=body, headers=bearer("nobody")).status_code == 401
    device_at_control = client.post("/api/control", json={"action": "set_mode", "value": "manual"},
                                    headers=bearer(DEVICE))
    assert device_at_control.status_code == 403
    # Admins may do what operators may; the label stays the admin's.
    by_admin = client.post("/api/control", json={"action": "set_mode", "value": "manual"}, headers=bearer(ADMIN))
    assert by_admin.status_code == 200 and by_admin.get_json()["control"]["operator"] == "root"


def test_the_rate_limit_counts_per_credential_from_the_same_check(make_app):
    client = make_app(**{**TOKENS, "device_keys": f"meter={DEVICE},other=dev-2",
                         "ingest_rate_limit": "2 per minute"}).test_client()
    body = {"sensor_id": "l-1", "value": 1}
    for _ in range(2):
        assert client.post("/api/ingest", json=body, headers={"X-API-Key": DEVICE}).status_code == 201
    limited = client.post("/api/ingest", json=body, headers={"X-API-Key": DEVICE})
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another key has its own window.
    assert client.post("/api/ingest", json=body, headers={"X-API-Key": "dev-2"}).status_code == 201
