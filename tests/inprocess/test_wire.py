"""One API convention everywhere, checked on real answers (README "API conventions").

Every GET route of the OpenAPI document is called on an app fed with readings,
alarms, a plan, decisions, a control, a device, a command, a simulated event
and an external source, and every Socket.IO event a client sees is caught; in
each, every key at every depth must be snake_case and every time ISO 8601 UTC
ending in `Z`. The only exceptions are app.api.wire.LEGACY_CAMEL_CASE (the
prototype's two answers), and maps keyed by data (wire.DATA_KEYED_FIELDS).
A documented route this walker cannot call fails the test: a new endpoint
cannot drift unseen.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jsonschema_rs import Draft202012Validator   # locked (schemathesis's); Python jsonschema is not
from prometheus_client.parser import text_string_to_metric_families

from app import wire
from tests.inprocess.conftest import OPERATOR, OPERATOR_HEADERS

APP = Path(__file__).resolve().parents[2] / "app"
ADMIN = "inproc-admin"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# A string that reads as a date and time, whatever its offset or separator.
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}|$)")
TIME_KEYS = {"timestamp", "time", "start", "stop", "end", "t", "ts", "since", "until", "last_seen",
             "last_success", "last_attempt", "next_fetch"}
# Numbers this close to now, in epoch seconds or milliseconds, are times whatever their key.
EPOCH_WINDOW_S = 10 * 365 * 86_400
# Lists that may be empty however the app is fed: a single process waits for nothing,
# and the first plan's actions have no cause (nothing changed before them).
MAY_BE_EMPTY = {"waiting_for", "causes"}


def is_time_key(key: str) -> bool:
    return key in TIME_KEYS or key.endswith(("_at", "_time", "_until", "_timestamp"))


def looks_like_epoch(value: float) -> bool:
    now = time.time()
    return abs(value - now) < EPOCH_WINDOW_S or abs(value / 1000 - now) < EPOCH_WINDOW_S


def problems(body, where: str, allowed_camel: frozenset[str] = frozenset()) -> list[str]:
    """Every breach of the convention in `body`, each named by its path."""
    found: list[str] = []

    def walk(value, path: str, key: str | None, data_keyed: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not data_keyed and not SNAKE.match(str(k)) and k not in allowed_camel:
                    found.append(f"{path}.{k}: key is not snake_case")
                walk(v, f"{path}.{k}", str(k), str(k) in wire.DATA_KEYED_FIELDS)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]", key, False)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float)):
            if key is not None and (is_time_key(key) or looks_like_epoch(value)):
                found.append(f"{path}: {value!r} is an epoch number, not an ISO time")
        elif isinstance(value, str):
            if (key is not None and is_time_key(key)) or LOOKS_LIKE_TIME.match(value):
                if not ISO_Z.match(value):
                    found.append(f"{path}: {value!r} is not ISO 8601 UTC with Z")
    walk(body, where, None, False)
    return found


def empty_lists(body, path: str = "") -> list[str]:
    """Lists in the answer with nothing in them: the feeding missed this part."""
    empty = []
    if isinstance(body, dict):
        for k, v in body.items():
            if isinstance(v, list) and not v and k not in MAY_BE_EMPTY:
                empty.append(f"{path}.{k}")
            empty += empty_lists(v, f"{path}.{k}")
    elif isinstance(body, list):
        for i, item in enumerate(body[:3]):
            empty += empty_lists(item, f"{path}[{i}]")
    return empty


# -- the checker itself ---------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"sensorId": "a"}, {"reading": {"latencyMs": 1}}, {"items": [{"RaisedAt": "x"}]},
    {"timestamp": 1764590000.0}, {"ts": 1764590000123}, {"value": time.time()},
    {"raised_at": "2026-12-01T10:00:00+00:00"}, {"note": "2026-12-01 10:00:00"},
    {"created_at": "yesterday"},
])
def test_the_checker_catches_camel_case_and_epoch_times(body):
    assert problems(body, "$")


def test_the_checker_lets_the_convention_pass():
    good = {"sensor_id": "S1", "timestamp": "2026-12-01T10:00:00.5Z", "uptime_s": 3.5, "latency_ms": 12,
            "zone_factors": {"Z_SOUTH": 1.2}, "p99": 4, "raised_at": None, "count": 12}
    assert problems(good, "$") == []


# -- feeding the app -----------------------------------------------------------------------

@pytest.fixture
def fed(make_app, tmp_path):
    """An app with something in every part, and the ids its path parameters take."""
    sources_file = tmp_path / "sources.json"
    # A source on a closed local port: one failed fetch gives it a state, an attempt and an error.
    sources_file.write_text(json.dumps({"sources": [
        {"id": "weather", "type": "open_meteo", "url": "http://127.0.0.1:9", "interval_s": 3600,
         "latitude": 12.97, "longitude": 77.59, "node_id": "WX_BENGALURU", "past_days": 1}]}))
    app = make_app(admin_tokens=f"admin={ADMIN}", sources_file=sources_file)
    client = app.test_client()
    bhs = app.extensions["bhs"]
    live = app.extensions["socketio"].test_client(app, namespace="/live")
    sensors = list(bhs.network.sensors.values())[:40]
    now = time.time()
    batch = [{"sensor_id": s.id, "value": float(s.normal[0] + s.normal[1]) / 2 if s.normal else 1.0,
              "timestamp": datetime.fromtimestamp(now - 60 + i, timezone.utc).isoformat()}
             for i, s in enumerate(sensors)]
    assert client.post("/api/sensors", json=batch).status_code == 202
    assert client.post("/api/ingest", json={"sensorId": "ADHOC-1", "value": 2.5, "latencyMs": 4}).status_code == 201
    bhs.engine.run_once(["test"])
    alarm = bhs.alerts.raise_("Z_SOUTH.ph", "quality_ph", "warning", "pH 9.4", node_id="Z_SOUTH",
                              sensor_id="Z_SOUTH.ph", metric="ph", value=9.4, threshold=9.0)
    assert client.post(f"/api/alerts/{alarm.id}/shelve", json={"duration_s": 600},
                       headers=OPERATOR_HEADERS).status_code == 200
    registered = client.post("/api/devices", headers=ADMIN_HEADERS, json={
        "id": "valve-box", "name": "Valve box", "kind": "valve", "actuators": ["V_CJF_WEST"],
        "telemetry": {"flowRate": {"sensor_id": "valve-box-flow", "metric": "flow", "unit": "MLD"}}})
    assert registered.status_code == 201, registered.json
    token = registered.json["token"]
    assert client.post(f"/api/v1/{token}/telemetry", json={"flowRate": 3.5, "waterRaw": 2870, "pump": "ON"}).status_code == 200
    # A write refused (another device's sensor): the device audit has an entry.
    assert client.post(f"/api/v1/{token}/telemetry", json={"sensor_id": "ADHOC-1", "value": 1}).status_code == 403
    control = client.post("/api/control", headers=OPERATOR_HEADERS,
                          json={"action": "set_valve", "target": "V_CJF_WEST", "value": 40, "reason": "test"})
    assert control.status_code == 200, control.json
    assert client.post("/api/simulation/trigger", headers=OPERATOR_HEADERS,
                       json={"event": "leak", "target": "Z_SOUTH"}).status_code == 201
    assert client.post("/api/simulation/baseline", headers=OPERATOR_HEADERS,
                       json={"target": "Z_SOUTH", "factor": 1.2}).status_code == 200
    bhs.sources.run("weather")
    return {"app": app, "client": client, "bhs": bhs, "live": live,
            "params": {"sensor_id": sensors[0].id, "alert_id": alarm.id, "device_id": "valve-box",
                       "token": token}}


def documented_gets(client) -> list[str]:
    spec = client.get("/openapi.json").json
    return sorted(path for path, operations in spec["paths"].items() if "get" in operations)


def schema_errors(spec: dict, path: str, body) -> list[str]:
    """Where a 200 answer differs from the response schema /openapi.json documents for it."""
    content = spec["paths"][path]["get"]["responses"]["200"].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return []
    validator = Draft202012Validator({**schema, "components": spec["components"]})
    return [f"{path}: {'/'.join(map(str, e.instance_path))}: {e.message[:200]}"
            for e in validator.iter_errors(body)]


QUERY = {"/api/history/export": {"format": "ndjson", "start": "-1h"},
         "/api/alerts": {"state": "all"}, "/api/logs": {"level": "DEBUG"},
         "/api/v1/{token}/rpc": {"timeout": "0"}}


def test_every_documented_get_answers_in_the_convention(fed):
    client, params = fed["client"], fed["params"]
    spec = client.get("/openapi.json").json
    paths = documented_gets(client)
    assert len(paths) >= 25, paths          # a generator that documents nothing fails here
    breaches, unreachable, thin, undocumented = [], [], [], []
    for path in paths:
        names = re.findall(r"{(\w+)}", path)
        if any(name not in params for name in names):
            unreachable.append(f"{path}: no value for {[n for n in names if n not in params]}")
            continue
        url = re.sub(r"{(\w+)}", lambda m: params[m.group(1)], path)
        query = dict(QUERY.get(path, {}))
        if path == "/api/history/export":
            query["sensor_id"] = params["sensor_id"]
        reply = client.get(url, query_string=query, headers=OPERATOR_HEADERS | ADMIN_HEADERS
                           if path.startswith("/api/audit") else OPERATOR_HEADERS)
        if reply.status_code != 200:
            unreachable.append(f"{path}: {reply.status_code} {reply.get_data(as_text=True)[:200]}")
            continue
        rule = re.sub(r"{(\w+)}", r"<\1>", path)
        allowed = wire.LEGACY_CAMEL_CASE.get(("GET", rule), frozenset())
        if reply.mimetype == "application/json":
            body = reply.json
            undocumented += schema_errors(spec, path, body)
        elif reply.mimetype == "application/x-ndjson":
            body = [json.loads(line) for line in reply.get_data(as_text=True).splitlines() if line]
        elif path == "/metrics":     # Prometheus text: its metric and label names are the keys
            body = [{sample.name: {label: value for label, value in sample.labels.items()}}
                    for family in text_string_to_metric_families(reply.get_data(as_text=True))
                    for sample in family.samples]
        else:
            unreachable.append(f"{path}: answered {reply.mimetype}, which this walker cannot read")
            continue
        if not body:
            thin.append(f"{path}: empty answer")
        thin += [f"{path}: {where} is empty" for where in empty_lists(body)]
        breaches += problems(body, path, allowed)
    assert not unreachable, unreachable
    assert not thin, thin
    assert not breaches, "\n".join(breaches)
    assert not undocumented, "\n".join(undocumented)    # the answers are what the document says


def test_the_legacy_answers_are_the_only_camel_case(client):
    sensor_id = "Z_SOUTH.flow"
    assert client.post("/api/sensors", json=[{"sensor_id": sensor_id, "value": 310.0, "latency_ms": 5}]).status_code == 202
    latest = client.get(f"/api/latest/{sensor_id}").json
    assert set(latest) == {"sensorId", "zone", "value", "latencyMs", "timestamp", "found"}
    assert problems(latest, "latest", wire.LEGACY_CAMEL_CASE[("GET", "/api/latest/<sensor_id>")]) == []
    missing = client.get("/api/latest/never-seen")
    assert missing.status_code == 404
    assert missing.json["found"] is False and missing.json["sensorId"] == "never-seen"
    assert missing.json["error"]["code"] == "not_found"
    ingest = client.post("/api/ingest", json={"sensor_id": "ADHOC-2", "value": 1.0}).json
    assert ingest["sensorId"] == "ADHOC-2"
    assert problems(ingest, "ingest", wire.LEGACY_CAMEL_CASE[("POST", "/api/ingest")]) == []


def test_readings_carry_no_internal_fields(client):
    sensor_id = "Z_SOUTH.flow"
    assert client.post("/api/sensors", json=[{"sensor_id": sensor_id, "value": 310.0}]).status_code == 202
    listed = client.get("/api/sensors").json["sensors"]
    one = client.get(f"/api/sensors/{sensor_id}").json
    for record in [*listed, one]:
        assert "ts" not in record and set(record) - {"recent"} <= set(wire.READING_FIELDS)


# -- Socket.IO -------------------------------------------------------------------------------

def live_events() -> set[str]:
    """Every event the server sends on /live, read from the code that sends them."""
    sent = set()
    for module in ("handlers.py", "realtime/broadcaster.py", "realtime/live.py"):
        sent |= set(re.findall(r'(?:emit|_flush)\("(\w+)"', (APP / module).read_text()))
    return sent


def test_the_live_events_are_found_in_the_code():
    assert {"snapshot", "sensor_update", "minor_update", "alert", "routing_update"} <= live_events()


def test_every_live_event_and_the_control_reply_are_in_the_convention(fed):
    app, client, bhs, live = fed["app"], fed["client"], fed["bhs"], fed["live"]
    seen = live.get_received("/live")
    bhs.broadcaster.start()        # the one background task this test needs: sensor frames
    try:
        seen += _more_of_everything(client, bhs, live)
    finally:
        bhs.broadcaster.stop()
    names = {m["name"] for m in seen}
    assert live_events() - names == set()      # an event this test does not raise fails it
    breaches = [p for m in seen for p in problems(m["args"], m["name"])]
    operator = app.extensions["socketio"].test_client(app, namespace="/control", auth={"token": OPERATOR})
    reply = operator.emit("control", {"action": "set_valve", "target": "V_CJF_WEST", "value": 50},
                          namespace="/control", callback=True)
    assert reply["ok"] is True
    breaches += problems(reply, "control ack")
    assert not breaches, "\n".join(breaches)


def _more_of_everything(client, bhs, live) -> list[dict]:
    client.post("/api/sensors", json=[{"sensor_id": "ADHOC-3", "value": 1.0}, {"sensor_id": "ADHOC-3", "value": 50.0}])
    client.post("/api/control", headers=OPERATOR_HEADERS, json={"action": "set_valve", "target": "V_CJF_WEST", "value": 60})
    bhs.engine.run_once(["test"])
    bhs.alerts.raise_("Z_NORTH.ph", "quality_ph", "critical", "pH 10", node_id="Z_NORTH",
                      sensor_id="Z_NORTH.ph", metric="ph", value=10.0, threshold=9.0)
    bhs.monitor.publish_health()
    bhs.forecaster.on_update(bhs.forecaster.view(bhs.clock()))    # what a finished slot publishes
    # The same value again: inside the deadband, a minor_update.
    client.post("/api/sensors", json=[{"sensor_id": "ADHOC-3", "value": 50.0}])
    client.post("/api/control", headers=OPERATOR_HEADERS, json={"action": "reset_demo"})
    seen: list[dict] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not {"sensor_update", "minor_update"} <= {m["name"] for m in seen}:
        seen += live.get_received("/live")
        time.sleep(0.05)
    return seen + live.get_received("/live")


def test_every_write_answers_in_the_convention(fed):
    """The answers of writes go through the same serializers (only /api/ingest's is legacy)."""
    client, bhs, params = fed["client"], fed["bhs"], fed["params"]
    ops, admin = OPERATOR_HEADERS, ADMIN_HEADERS
    decision = next(d for d in client.get("/api/decisions?limit=50").json["decisions"]
                    if d["state"] == "recommended")
    alarm = bhs.alerts.raise_("Z_EAST.ph", "quality_ph", "warning", "pH 9.2", node_id="Z_EAST",
                              sensor_id="Z_EAST.ph", metric="ph", value=9.2, threshold=9.0)
    command = client.get("/api/commands").json["commands"][0]
    token = params["token"]
    writes = [
        ("POST", "/api/sensors", None, [{"sensor_id": "ADHOC-4", "value": 1.0}]),
        ("POST", "/api/control/preview", ops, {"action": "isolate", "target": "SRC_CWSS_4"}),
        ("POST", "/api/control", ops, {"action": "isolate", "target": "SRC_CWSS_5"}),
        ("POST", f"/api/decisions/{decision['id']}/apply", ops, None),
        ("POST", f"/api/alerts/{alarm.id}/ack", ops, None),
        ("POST", "/api/alerts/ack", ops, {"ids": [params["alert_id"]]}),
        ("POST", f"/api/alerts/{params['alert_id']}/unshelve", ops, None),
        ("POST", f"/api/sources/weather/refresh", ops, None),
        ("POST", "/api/simulation/baseline", ops, {"target": "all", "factor": 1.1}),
        ("POST", "/api/simulation/stop", ops, None),
        ("POST", f"/api/v1/{token}/telemetry", None, {"ts": int(time.time() * 1000), "values": {"flowRate": 2.0}}),
        ("POST", f"/api/v1/{token}/rpc/{command['id']}", None, {"status": "successful"}),
        ("PATCH", "/api/devices/valve-box", admin, {"name": "Valve box 2"}),
        ("POST", "/api/devices/valve-box/token", admin, None),
        ("POST", "/api/admin/reset", admin, None),
        ("DELETE", "/api/devices/valve-box", admin, None),
    ]
    breaches, failed = [], []
    for method, url, headers, body in writes:
        reply = client.open(url, method=method, headers=headers or {}, json=body)
        if reply.status_code >= 300:
            failed.append(f"{method} {url}: {reply.status_code} {reply.get_data(as_text=True)[:200]}")
            continue
        breaches += problems(reply.json, f"{method} {url}")
    assert not failed, failed
    assert not breaches, "\n".join(breaches)
