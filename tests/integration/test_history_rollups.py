"""Retention and rollups in a real InfluxDB (1.6.7): set up at start, idempotent, and used.

Late (back-filled) points land in history and in their rollups, without
moving the live state backwards; a 30-day chart answers from the 1 h rollup.
"""
from __future__ import annotations

import statistics
import time
from collections import defaultdict

import pytest
import requests

from app.services.history import AGGREGATES
from testkit.helpers import stamp, wait_for

DAY = 86400


def schema(server) -> dict:
    return requests.get(server.url + "/api/status", timeout=5).json()["history"]["schema"]


def continuous_queries(influx, db) -> list[dict]:
    """This database's continuous queries (SHOW lists every database's, one series each)."""
    reply = requests.post(influx.url + "/query", params={"q": "SHOW CONTINUOUS QUERIES"}, timeout=10).json()
    series = [s for s in reply["results"][0].get("series", []) if s["name"] == db]
    return [dict(zip(s["columns"], v)) for s in series for v in s.get("values", [])]


def layout(influx, db) -> tuple:
    policies = influx.query(db, f'SHOW RETENTION POLICIES ON "{db}"')
    queries = [row for row in continuous_queries(influx, db) if row["name"].startswith("bhs_")]
    return (sorted((p["name"], p["duration"], p["default"]) for p in policies),
            sorted((q["name"], q["query"]) for q in queries))


def test_rollups_are_set_up_once_and_a_second_start_changes_nothing(start_server, influx, influx_db):
    db, env = influx_db
    # Something of the user's that setup must leave alone.
    influx.query(db, f'CREATE RETENTION POLICY "mine" ON "{db}" DURATION 30d REPLICATION 1')
    influx.query(db, f'CREATE CONTINUOUS QUERY "user_cq" ON "{db}" BEGIN SELECT max("value") INTO "mine"."peaks" '
                     f'FROM "sensor_reading" GROUP BY time(1h) END')
    server = start_server(**env)
    first = wait_for(lambda: schema(server), lambda s: s["state"] == "ready")
    assert first["kind"] == "1.x" and len(first["changes"]) == 7    # raw retention, 3 RPs, 3 CQs
    policies, queries = layout(influx, db)
    assert ("autogen", "2160h0m0s", True) in policies               # RAW_RETENTION 90d
    for name in ("bhs_1m", "bhs_1h", "bhs_1d"):
        assert (name, "17472h0m0s", False) in policies               # ROLLUP_RETENTION 104w
    assert ("mine", "720h0m0s", False) in policies
    assert [q[0] for q in queries] == ["bhs_rollup_1d", "bhs_rollup_1h", "bhs_rollup_1m"]
    # Every aggregate a query may ask for (history.AGGREGATES, in its order) is rolled up.
    assert ", ".join(f"{a}(value) AS {a}" for a in AGGREGATES) in queries[2][1]
    server.stop()

    again = start_server(**env)
    second = wait_for(lambda: schema(again), lambda s: s["state"] == "ready")
    assert second["changes"] == []
    assert layout(influx, db) == (policies, queries)
    assert any(q["name"] == "user_cq" for q in continuous_queries(influx, db))
    again.stop()

    changed = start_server(**env, RAW_RETENTION="30d", ROLLUP_RETENTION="0")
    third = wait_for(lambda: schema(changed), lambda s: s["state"] == "ready")
    assert "raw retention of autogen set to 30d" in third["changes"]
    policies, _ = layout(influx, db)
    assert ("autogen", "720h0m0s", True) in policies and ("bhs_1h", "0s", False) in policies


def hourly(points: list[tuple[float, float]]) -> dict[float, dict]:
    buckets = defaultdict(list)
    for ts, value in points:
        buckets[ts // 3600 * 3600].append(value)
    return {t: {"v": statistics.fmean(v), "min": min(v), "max": max(v), "count": len(v)}
            for t, v in sorted(buckets.items())}


def test_a_backfill_lands_whole_without_moving_live_state_and_a_month_answers_from_1h(
        start_server, influx, influx_db):
    db, env = influx_db
    server = start_server(**env, MAX_BATCH="10000")
    wait_for(lambda: schema(server), lambda s: s["state"] == "ready")
    now = time.time()
    live = {"sensor_id": "bf-1", "metric": "ph", "value": 7.2, "timestamp": stamp(now - 5)}
    assert requests.post(server.url + "/api/sensors", json=[live]).status_code == 202
    # A device's buffer: 10,000 pH readings over the last 30 days, sent newest first,
    # with spikes that would raise alerts if they were taken as live.
    step = (30 * DAY - 900) / 10_000      # the newest ends 15 min before the live reading
    buffer = [(now - 30 * DAY + 60 + i * step, 12.5 if i % 997 == 0 else round(7 + (i % 17) / 20, 3))
              for i in range(10_000)]
    items = [{"sensor_id": "bf-1", "metric": "ph", "value": v, "timestamp": stamp(t)} for t, v in reversed(buffer)]
    reply = requests.post(server.url + "/api/sensors", json=items, timeout=30)
    assert reply.status_code == 202 and reply.json()["accepted"] == 10_000
    where = "WHERE \"sensor_id\" = 'bf-1'"
    wait_for(lambda: influx.count(db, where=where), lambda n: n == 10_001, timeout=30)

    latest = requests.get(server.url + "/api/latest/bf-1").json()
    assert latest["value"] == 7.2 and latest["timestamp"] == live["timestamp"]     # not moved back
    recent = requests.get(server.url + "/api/sensors/bf-1").json()["recent"]
    assert [p["v"] for p in recent] == [7.2]
    alerts = requests.get(server.url + "/api/alerts", params={"state": "all"}).json()["alerts"]
    assert not [a for a in alerts if a.get("sensor_id") == "bf-1"]                   # no stale alerts

    # The back-fill reached the rollups: 30 days answer from the 1 h rollup, bands included ...
    # A back-fill may take the points in parts (or retry one that failed under load): wait
    # until none is left, or a later one would roll up the probe points written below.
    wait_for(lambda: requests.get(server.url + "/api/status").json()["history"],
             lambda h: h["backfills"] >= 1 and not h["backfill_pending"], timeout=30)
    expected = hourly(buffer + [(now - 5, 7.2)])
    answer = requests.get(server.url + "/api/history/bf-1", params={"start": "-30d"}).json()
    assert answer["resolution"] == "1h" and answer["segments"][0]["resolution"] == "1h"
    got = {datetime_s(p["t"]): p for p in answer["points"]}
    assert sorted(got) == list(expected)
    for t, bucket in expected.items():
        assert got[t]["v"] == pytest.approx(bucket["v"]) and got[t]["count"] == bucket["count"]
        assert got[t]["min"] == bucket["min"] and got[t]["max"] == bucket["max"]
    assert max(p["max"] for p in answer["points"]) == 12.5          # a spike a mean would hide
    # ... and really from the rollup: with raw points older than 2 days gone, the answer stands.
    # ... and really from the rollup: raw points added now to old hours (another series of
    # bf-1, as no continuous query looks back that far) would change a raw-computed answer.
    old = "\n".join(f"sensor_reading,sensor_id=bf-1,probe=extra value=-100.0 {int(t * 1e9)}"
                    for t, _ in buffer if t < now - 2 * DAY)
    requests.post(influx.url + "/write", params={"db": db}, data=old).raise_for_status()
    again = requests.get(server.url + "/api/history/bf-1", params={"start": "-30d"}).json()
    assert again["points"] == answer["points"]
    # Every hour is in the rollup (the current one once its continuous query has run).
    assert influx.count(db, "bhs_1h\".\"sensor_reading", where) >= len(expected) - 1

    week = requests.get(server.url + "/api/history/bf-1", params={"start": "-7d"}).json()
    assert week["resolution"] == "1m"
    raw = requests.get(server.url + "/api/history/bf-1", params={"start": "-1d", "resolution": "raw"}).json()
    assert raw["resolution"] == "raw" and all("min" not in p for p in raw["points"])
    assert len(raw["points"]) == sum(1 for t, _ in buffer if t >= now - DAY) + 1

    # Export streams the same history: every raw point (over several pages) and the 1 h rollup.
    export = requests.get(server.url + "/api/history/export", stream=True, params={
        "sensor_id": "bf-1", "start": "-31d", "resolution": "raw", "format": "csv"})
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    lines = list(export.iter_lines(decode_unicode=True))
    extra = sum(1 for t, _ in buffer if t < now - 2 * DAY)        # the probe=extra points above
    assert lines[0] == "time,sensor_id,metric,unit,value,quality" and len(lines) == 1 + 10_001 + extra
    first = dict(zip(lines[0].split(","), next(x for x in lines[1:] if ",-100.0," not in x).split(",")))
    assert first["sensor_id"] == "bf-1" and first["metric"] == "ph" and float(first["value"]) == buffer[0][1]
    values = [float(line.split(",")[4]) for line in lines[1:]]
    assert sorted(v for v in values if v != -100.0) == sorted([v for _, v in buffer] + [7.2])
    quality = {float(line.split(",")[4]): line.split(",")[5] for line in lines[1:]}
    assert quality[12.5] in ("suspect", "bad") and quality[7.2] == "good"      # spikes are flagged
    rolled = requests.get(server.url + "/api/history/export", params={
        "sensor_id": ["bf-1", "nobody"], "start": "-30d", "format": "ndjson"})
    records = [__import__("json").loads(line) for line in rolled.text.splitlines()]
    assert rolled.headers["X-History-Resolution"] == "1h" and len(records) == len(expected)
    assert set(records[0]) == {"time", "sensor_id", "metric", "unit", "mean", "min", "max", "count", "quality"}
    assert [(datetime_s(r["time"]), r["count"], r["max"]) for r in records] == \
        [(t, b["count"], b["max"]) for t, b in expected.items()]

    ahead = requests.post(server.url + "/api/sensors",
                          json=[{"sensor_id": "bf-1", "value": 7.0, "timestamp": stamp(time.time() + 400)}])
    assert ahead.status_code == 422
    assert "MAX_CLOCK_SKEW_S" in ahead.json()["error"]["details"][0]["message"]


def datetime_s(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
