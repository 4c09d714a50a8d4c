"""Hypothesis-generated telemetry bodies, in process: never a 5xx, never another device's sensor moved."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from app import create_app
from app.config import Settings

ADMIN = {"Authorization": "Bearer fuzz-admin"}
KEYS = st.sampled_from(["q", "p", "b-flow", "sensor_id", "sensorId", "ts", "values", "pump", "x" * 65, "k\n"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(),
                    st.text(max_size=12), st.sampled_from(["12.5", "1e400", "NaN", "ON", "b-flow", " 7 "]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                    max_leaves=12)
ENTRY = st.dictionaries(KEYS, SCALARS, max_size=5)
STAMPED = st.fixed_dictionaries({"values": ENTRY}, optional={"ts": SCALARS | st.integers(0, 2 * 10**12)})
BODIES = st.one_of(JSON, ENTRY, STAMPED, st.lists(ENTRY | STAMPED, max_size=5))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    app = create_app(Settings(instance_dir=tmp_path_factory.mktemp("fuzz-devices"), simulator="off",
                              admin_tokens="fuzz-admin", operator_tokens="ops"))
    client = app.test_client()
    tokens = {}
    for name, key in (("a", "q"), ("b", "q")):
        reply = client.post("/api/devices", headers=ADMIN, json={
            "id": f"dev-{name}", "name": name, "kind": "meter",
            "telemetry": {key: {"sensor_id": f"{name}-flow", "metric": "flow", "scale": 2}}})
        tokens[name] = reply.get_json()["token"]
    assert client.post(f"/api/v1/{tokens['b']}/telemetry", json={"q": 21}).status_code == 200
    return client, tokens


@given(body=BODIES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_telemetry_bodies_never_5xx_and_never_move_another_devices_sensor(fleet, body):
    client, tokens = fleet
    raw = json.dumps(body, allow_nan=True)
    reply = client.post(f"/api/v1/{tokens['a']}/telemetry", data=raw, content_type="application/json")
    assert reply.status_code in (200, 400, 403, 413, 422), reply.get_data(as_text=True)
    assert reply.get_json()["error"]["code"] if reply.status_code != 200 else True
    assert client.get("/api/latest/b-flow").get_json()["value"] == 42.0
