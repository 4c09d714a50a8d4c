"""History in a real InfluxDB: round trips, escaping, events, and outages.

Debian's only InfluxDB is 1.6.7, which lacks /api/v2/write; the `influx`
fixture puts a small path-translating bridge in front of it (tests only), so
the production client runs unchanged. Reads use /query, which 1.6.7 serves.
"""
from __future__ import annotations

import signal
import time
from collections import defaultdict
from datetime import datetime

import pytest
import requests

from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}




def status(server):
    return requests.get(server.url + "/api/status", timeout=5).json()["history"]


def test_readings_round_trip_raw_and_as_minute_means(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    base = (int(time.time()) // 120 - 5) * 120           # an even minute, ~10 minutes ago
    readings = [{"sensor_id": "hist-1", "value": round(10 + (i * 7) % 13 + i / 10, 3),
                 "timestamp": stamp(base + 5 * i + 0.25)} for i in range(48)]   # 4 minutes
    assert requests.post(server.url + "/api/sensors", json=readings).status_code == 202
    wait_for(lambda: influx.count(db), lambda n: n >= 48)

    raw = requests.get(server.url + "/api/history/hist-1", params={"start": "-15m"}).json()
    assert [p["v"] for p in raw["points"]] == [r["value"] for r in readings]
    assert raw["points"][0]["t"] == readings[0]["timestamp"]
    assert raw["capped"] is False

    means = requests.get(server.url + "/api/history/hist-1",
                         params={"start": "-15m", "every": "1m", "fn": "mean"}).json()["points"]
    buckets = defaultdict(list)
    for r in readings:
        buckets[int(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()) // 60].append(r["value"])
    expected = [sum(v) / len(v) for _, v in sorted(buckets.items())]
    assert [p["v"] for p in means] == pytest.approx(expected)
    assert means[0]["t"] == stamp(base)

    counts = requests.get(server.url + "/api/history/hist-1",
                          params={"start": "-15m", "every": "2m", "fn": "count"}).json()["points"]
    assert [p["v"] for p in counts] == [24, 24]
    iso_start = requests.get(server.url + "/api/history/hist-1",
                             params={"start": stamp(base + 60), "stop": stamp(base + 120)}).json()
    assert len(iso_start["points"]) == 12
    bad = requests.get(server.url + "/api/history/hist-1", params={"fn": "median", "every": "1m"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "fn"


def test_awkward_tag_values_are_written_and_read_back_exactly(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    zone = 'South, "East" = 1\\2 zone'
    node = "node with spaces,and=equals"
    reply = requests.post(server.url + "/api/ingest",
                          json={"sensor_id": "tag-1", "value": 3.5, "zone": zone, "node_id": node})
    assert reply.status_code == 201
    wait_for(lambda: influx.count(db), lambda n: n >= 1)
    rows = influx.query(db, 'SELECT "value", "zone", "node_id" FROM "sensor_reading"')
    assert rows[0]["zone"] == zone and rows[0]["node_id"] == node and rows[0]["value"] == 3.5


def test_a_hostile_sensor_id_cannot_change_the_query(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    requests.post(server.url + "/api/sensors", json=[{"sensor_id": "secret-1", "value": 42.0}])
    wait_for(lambda: influx.count(db), lambda n: n >= 1)
    for hostile in ["x' OR sensor_id != '", "x\\' OR 1=1 --", 'x" OR "a"="a', "secret-1' OR '1'='1",
                    "secret-1'; DROP DATABASE \"" + db + "\"; --"]:
        reply = requests.get(server.url + "/api/history/" + requests.utils.quote(hostile, safe=""),
                             params={"start": "-1h"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["points"] == []
    assert len(requests.get(server.url + "/api/history/secret-1", params={"start": "-1h"}).json()["points"]) == 1
    assert influx.count(db) == 1


def test_decision_control_and_alert_points_land(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    # Isolate after the first plan, so the isolation is a change of plan of its own.
    wait_for(lambda: requests.get(server.url + "/api/routing").json(), lambda p: p["status"] == "optimal")
    assert requests.post(server.url + "/api/control", headers=AUTH,
                         json={"action": "isolate", "target": "SRC_CWSS_5", "reason": "test"}).status_code == 200
    # A burst in a zone raises a leak decision and alert.
    now = time.time()
    steady = [r for k in range(40) for r in (
        {"sensor_id": "Z_EAST.flow", "value": 200.0 + k % 3, "timestamp": stamp(now - 260 + 5 * k)},
        {"sensor_id": "Z_EAST.pressure_1", "value": 24.0, "timestamp": stamp(now - 260 + 5 * k)})]
    requests.post(server.url + "/api/sensors", json=steady)
    requests.post(server.url + "/api/sensors", json=[r for k in range(9) for r in (   # a lasting burst
        {"sensor_id": "Z_EAST.flow", "value": 260.0, "timestamp": stamp(now - 40 + 5 * k)},
        {"sensor_id": "Z_EAST.pressure_1", "value": 19.0, "timestamp": stamp(now - 40 + 5 * k)})])
    wait_for(lambda: influx.count(db, "control"), lambda n: n >= 1)
    # The isolation's re-plan and the leak are decisions of their own, in either order.
    wait_for(lambda: {row["kind"] for row in influx.query(db, 'SELECT * FROM "decision"')},
             lambda kinds: {"isolate_source", "leak_suspected"} <= kinds)
    wait_for(lambda: influx.count(db, "alert"), lambda n: n >= 1)
    control = influx.query(db, 'SELECT * FROM "control"')[0]
    assert control["action"] == "isolate" and control["target"] == "SRC_CWSS_5" and control["operator"] == "ops"
    assert OPERATOR_TOKEN not in str(control)
    kinds = {row["kind"] for row in influx.query(db, 'SELECT * FROM "decision"')}
    assert {"isolate_source", "leak_suspected"} <= kinds
    alert = influx.query(db, 'SELECT * FROM "alert"')[0]
    assert alert["condition"] == "leak_suspected" and alert["node_id"] == "Z_EAST"


def test_outage_loses_nothing_and_health_says_so(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env, HISTORY_ALERT_AFTER_S="1", HISTORY_RETRY_MAX_S="1")
    assert requests.get(server.url + "/api/health").json()["services"]["influxdb"] == "ok"
    influx.stop()
    try:
        for batch in range(10):
            items = [{"sensor_id": f"out-{i % 20}", "value": float(batch * 100 + i)} for i in range(100)]
            reply = requests.post(server.url + "/api/sensors", json=items, timeout=5)
            assert reply.status_code == 202
        health = wait_for(lambda: requests.get(server.url + "/api/health").json(),
                          lambda h: h["services"]["influxdb"] == "down")
        assert health["status"] == "degraded"
        wait_for(lambda: status(server), lambda s: s["spooled"] >= 1000)
    finally:
        influx.start()
    wait_for(lambda: influx.count(db), lambda n: n >= 1000, timeout=60)
    assert influx.count(db) == 1000
    final = wait_for(lambda: status(server), lambda s: s["spooled"] == 0)
    assert final["failed"] == 0 and final["written"] >= 1000
    wait_for(lambda: requests.get(server.url + "/api/health").json(), lambda h: h["status"] == "ok")


def test_spool_survives_a_killed_server_and_replays_at_start(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    influx.stop()
    try:
        items = [{"sensor_id": f"kill-{i % 10}", "value": float(i)} for i in range(500)]
        assert requests.post(server.url + "/api/sensors", json=items, timeout=5).status_code == 202
        wait_for(lambda: status(server), lambda s: s["spooled"] >= 500)
        server.stop(signal.SIGKILL)               # no chance to flush anything
    finally:
        influx.start()
    assert influx.count(db) == 0
    start_server(**env)                           # same instance folder: replays the spool
    wait_for(lambda: influx.count(db), lambda n: n >= 500, timeout=60)
    assert influx.count(db) == 500


def test_graceful_shutdown_flushes_the_buffer(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env, INFLUX_FLUSH_MS="60000", INFLUX_BATCH_LINES="100000")
    items = [{"sensor_id": f"flush-{i % 10}", "value": float(i)} for i in range(300)]
    assert requests.post(server.url + "/api/sensors", json=items).status_code == 202
    assert influx.count(db) == 0                  # still buffered: the flush interval is a minute
    assert server.stop() == 0
    assert influx.count(db) == 300


def test_rejected_data_is_counted_not_retried_forever(influx, influx_db, tmp_path):
    """A batch the database refuses (a field type conflict) is dropped and counted;
    it must not block the batches behind it."""
    import threading

    from app.adapters.influx import InfluxHistory
    from app.adapters.spool import DiskSpool

    db, env = influx_db
    history = InfluxHistory(env["INFLUXDB_URL"], "t", "bhs", db, DiskSpool(tmp_path / "spool", 1 << 20),
                            spawn=lambda fn: threading.Thread(target=fn, daemon=True).start(),
                            sleep=time.sleep)
    history.start()
    try:
        from testkit.readings import reading
        history.write_readings([reading("rej-1", 1.0, time.time(), metric="flow")])
        wait_for(lambda: history.status()["written"], lambda n: n == 1)
        history.write_event("sensor_reading", {"sensor_id": "rej-1"}, {"value": "not a number"}, time.time())
        wait_for(lambda: history.status()["failed"], lambda n: n == 1)
        history.write_readings([reading("rej-1", 1.0, time.time(), metric="flow")])
        wait_for(lambda: history.status()["written"], lambda n: n == 2)
        assert history.health() == "ok" and history.status()["spooled"] == 0
    finally:
        history.stop()


def test_flagged_readings_are_stored_with_their_flag(start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env)
    requests.post(server.url + "/api/sensors", json=[{"sensor_id": "flag-1", "metric": "ph", "value": 7.1},
                                                     {"sensor_id": "flag-2", "metric": "ph", "value": 15.2}])
    wait_for(lambda: influx.count(db), lambda n: n >= 2)
    rows = {r["sensor_id"]: r for r in influx.query(db, 'SELECT "value", "quality", "sensor_id" FROM "sensor_reading"')}
    assert rows["flag-2"]["quality"] == "bad" and rows["flag-2"]["value"] == 15.2
    assert rows["flag-1"]["quality"] is None
