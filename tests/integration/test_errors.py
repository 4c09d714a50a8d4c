"""Every failure mode of the contract answers with the JSON error envelope."""
from __future__ import annotations

import pytest
import requests

from testkit.server import OPERATOR_TOKEN


def assert_envelope(reply, status, code):
    assert reply.status_code == status
    assert reply.headers["Content-Type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    return error


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    from testkit.server import ServerProcess
    proc = ServerProcess(tmp_path_factory.mktemp("keyed"), DEVICE_KEYS="dev-key-1,dev-key-2",
                         MAX_BODY_BYTES="65536").start()
    yield proc
    proc.stop()


def test_malformed_json_is_400(keyed):
    reply = requests.post(keyed.url + "/api/ingest", data=b'{"sensor_id": "x", "value": ',
                          headers={"Content-Type": "application/json", "X-API-Key": "dev-key-1"})
    assert_envelope(reply, 400, "bad_request")


def test_missing_or_wrong_device_key_is_401(keyed):
    body = {"sensor_id": "k1", "value": 1}
    assert_envelope(requests.post(keyed.url + "/api/ingest", json=body), 401, "unauthorized")
    assert_envelope(requests.post(keyed.url + "/api/ingest", json=body,
                                  headers={"X-API-Key": "nope"}), 401, "unauthorized")
    assert requests.post(keyed.url + "/api/ingest", json=body,
                         headers={"Authorization": "Bearer dev-key-2"}).status_code == 201


def test_operator_token_on_ingest_is_403(keyed):
    reply = requests.post(keyed.url + "/api/ingest", json={"sensor_id": "k1", "value": 1},
                          headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert_envelope(reply, 403, "forbidden")


def test_unknown_route_is_404(keyed):
    assert_envelope(requests.get(keyed.url + "/no/such/page"), 404, "not_found")
    assert_envelope(requests.get(keyed.url + "/api/sensors/unknown-sensor"), 404, "not_found")


def test_wrong_method_is_405(keyed):
    reply = requests.delete(keyed.url + "/api/ingest")
    assert_envelope(reply, 405, "method_not_allowed")
    assert "POST" in reply.headers["Allow"]


def test_too_large_body_is_413(keyed):
    body = b'{"sensor_id": "big", "value": 1, "unit": "' + b"x" * 70_000 + b'"}'
    reply = requests.post(keyed.url + "/api/ingest", data=body,
                          headers={"Content-Type": "application/json", "X-API-Key": "dev-key-1"})
    assert_envelope(reply, 413, "payload_too_large")


def test_not_json_is_415(keyed):
    reply = requests.post(keyed.url + "/api/ingest", data="sensor_id=x&value=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                   "X-API-Key": "dev-key-1"})
    assert_envelope(reply, 415, "unsupported_media_type")


@pytest.mark.parametrize("body, field", [
    ({"sensor_id": "x"}, "value"),
    ({"sensor_id": "x", "value": True}, "value"),
    ({"sensor_id": "x", "value": "NaN"}, "value"),
    ({"sensor_id": "", "value": 1}, "sensor_id"),
    ({"sensor_id": "x", "value": 1, "timestamp": "2999-01-01T00:00:00Z"}, "timestamp"),
    ({"sensor_id": "x", "value": 1, "latencyMs": -1}, "latency_ms"),
])
def test_invalid_fields_are_422_naming_the_field(keyed, body, field):
    reply = requests.post(keyed.url + "/api/ingest", json=body, headers={"X-API-Key": "dev-key-1"})
    error = assert_envelope(reply, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == [field]
    assert "index" not in error["details"][0]


def test_nan_literal_is_refused_not_stored(keyed):
    reply = requests.post(keyed.url + "/api/ingest", data=b'{"sensor_id": "nan-1", "value": NaN}',
                          headers={"Content-Type": "application/json", "X-API-Key": "dev-key-1"})
    assert_envelope(reply, 422, "validation_error")
    assert requests.get(keyed.url + "/api/latest/nan-1").status_code == 404


def test_batch_over_5000_is_422_and_5000_is_accepted(server):
    batch = [{"sensor_id": f"cap-{i}", "value": 1} for i in range(5001)]
    error = assert_envelope(requests.post(server.url + "/api/sensors", json=batch), 422,
                            "validation_error")
    assert "5000" in error["message"]
    assert requests.get(server.url + "/api/latest/cap-0").status_code == 404
    assert requests.post(server.url + "/api/sensors", json=batch[:5000]).json() == {"accepted": 5000}


def test_deeply_nested_json_is_400(keyed):
    body = b"[" * 10_000 + b"]" * 10_000
    reply = requests.post(keyed.url + "/api/sensors", data=body,
                          headers={"Content-Type": "application/json", "X-API-Key": "dev-key-1"})
    assert_envelope(reply, 400, "bad_request")
