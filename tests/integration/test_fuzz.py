"""Fuzzing the live server: schemathesis from /openapi.json, and hand-picked hostile input.

Afterwards a valid reading must still land and the server still answer.
"""
from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from testkit.server import OPERATOR_TOKEN, ServerProcess

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    # Rate limits off the table: the fuzzer sends many requests from one address.
    # The operator token is an admin's too, so the device registry is fuzzed past its role check.
    proc = ServerProcess(tmp_path_factory.mktemp("fuzz"), INGEST_RATE_LIMIT="100000 per second",
                         CONTROL_RATE_LIMIT="100000 per second", ADMIN_TOKENS=OPERATOR_TOKEN).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_500s_and_responses_match_the_schema(case):
    # Business rules the schema cannot state (a timestamp at most 5 minutes
    # ahead, a known node for a control, a leak only at a zone) rightly refuse
    # some schema-valid requests, so "valid data must be accepted" is skipped.
    # Reads ignore query parameters they don't know, as most APIs do (cache
    # busters), so invalid-data rejection is checked on request bodies only.
    excluded = [positive_data_acceptance] + ([negative_data_rejection] if case.method == "GET" else [])
    case.call_and_validate(headers=AUTH, timeout=10, excluded_checks=excluded)


@pytest.mark.parametrize("body, content_type, status", [
    (b'{"sensor_id": "x", "value": 1', "application/json", 400),                 # malformed
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),                         # deeply nested
    (b'{"sensor_id": "x", "value": Infinity}', "application/json", 422),
    (b'{"sensor_id": "x", "value": -Infinity}', "application/json", 422),
    (b'{"sensor_id": "x", "value": NaN}', "application/json", 422),
    (b'{"sensor_id": "x", "value": "12"}', "application/json", 422),               # wrong type
    (b'{"sensor_id": 12, "value": 1}', "application/json", 422),
    (b'{"sensor_id": "x\\u0000y", "value": 1}', "application/json", 422),          # control character
    (b'{"sensor_id": "\xe0\xb2\x95\xe0\xb2\xbe", "value": 1}', "application/json", 422),  # unicode id
    (b'{"sensor_id": "x", "value": 1, "zone": "a\\nb"}', "application/json", 422),
    (b'{"sensor_id": "x", "value": 1, "timestamp": "9999-12-31T00:00:00Z"}', "application/json", 422),
    (b'{"sensor_id": "x", "value": 1, "timestamp": "yesterday"}', "application/json", 422),
    (b'\xff\xfe{}', "application/json", 400),                                     # not UTF-8
    (b"sensor_id=x&value=1", "text/plain", 415),
])
def test_hostile_bodies_get_clear_errors(fuzz_server, body, content_type, status):
    reply = requests.post(fuzz_server.url + "/api/ingest", data=body, headers={"Content-Type": content_type})
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"]


def test_ten_megabyte_body_is_413(fuzz_server):
    body = b'{"sensor_id": "big", "value": 1, "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    reply = requests.post(fuzz_server.url + "/api/sensors", data=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "payload_too_large"


def test_5001_readings_are_refused_and_a_valid_reading_still_lands(fuzz_server):
    batch = [{"sensor_id": f"f-{i}", "value": 1} for i in range(5001)]
    assert requests.post(fuzz_server.url + "/api/sensors", json=batch).status_code == 422
    ok = requests.post(fuzz_server.url + "/api/ingest", json={"sensor_id": "after-fuzz", "value": 42.0})
    assert ok.status_code == 201
    assert requests.get(fuzz_server.url + "/api/latest/after-fuzz").json()["value"] == 42.0
    assert requests.get(fuzz_server.url + "/api/health").status_code == 200
