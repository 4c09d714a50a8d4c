"""Every InfluxDB write status, end to end: server -> fault proxy -> bridge -> influxd 1.6.7.

The proxy (tests/fault_proxy.py) answers writes with 404, then 401, then 413
for large bodies, then 5xx, each for a while. Whatever the server accepted
must end up in InfluxDB exactly once, health must go degraded and back, and
the `history_write_failing` alert must be raised and cleared.
"""
from __future__ import annotations

import re
import time

import pytest
import requests

from testkit.helpers import stamp, wait_for
from tests.fault_proxy import FaultProxy

SENSORS = 5
# Fast retries and alert so each phase takes a second or two.
FAST = {"HISTORY_ALERT_AFTER_S": "1", "HISTORY_RETRY_MAX_S": "0.4", "INFLUX_BATCH_LINES": "200"}


@pytest.fixture
def proxy(influx):
    fault = FaultProxy(influx.bridge.url).start()
    yield fault
    fault.stop()


class Feed:
    """Readings with distinct timestamps and values, so each is one InfluxDB point."""

    def __init__(self, server, prefix: str):
        self.server, self.prefix = server, prefix
        self.base = time.time() - 250
        self.sent: list[float] = []

    def post(self, count: int) -> None:
        start = len(self.sent)
        items = [{"sensor_id": f"{self.prefix}-{k % SENSORS}", "value": float(k),
                  "timestamp": stamp(self.base + k * 0.001)} for k in range(start, start + count)]
        reply = requests.post(self.server.url + "/api/sensors", json=items, timeout=10)
        assert reply.status_code == 202, reply.text
        self.sent += [item["value"] for item in items]


def health(server) -> dict:
    return requests.get(server.url + "/api/health", timeout=5).json()


def last_status(h: dict) -> int | None:
    return (h["history"]["last_error"] or {}).get("status")


def failing_alerts(server) -> list[dict]:
    """The `history_write_failing` alarm(s) whose condition is present."""
    return [a for a in history_alarms(server) if a["active"]]


def history_alarms(server) -> list[dict]:
    alerts = requests.get(server.url + "/api/alerts", params={"state": "all"}, timeout=5).json()["alerts"]
    return [a for a in alerts if a["condition"] == "history_write_failing"]


def stored_values(influx, db, prefix: str) -> list[float]:
    rows = influx.query(db, f"SELECT \"value\" FROM \"sensor_reading\" WHERE \"sensor_id\" =~ /^{prefix}-/")
    return sorted(row["value"] for row in rows)


def test_every_write_status_loses_nothing_and_health_and_alert_follow(start_server, influx, influx_db, proxy):
    db, env = influx_db
    server = start_server(**{**env, "INFLUXDB_URL": proxy.url}, **FAST)
    feed = Feed(server, "fp")
    feed.post(50)
    wait_for(lambda: stored_values(influx, db, "fp"), lambda v: len(v) == 50)
    assert health(server)["services"]["influxdb"] == "ok"

    for status in (404, 401):
        proxy.answer(status)
        feed.post(120)
        seen = proxy.seen[status]
        detail = wait_for(lambda: health(server), lambda h: last_status(h) == status
                          and proxy.seen[status] >= seen + 2)   # held and retried, not dropped
        assert detail["services"]["influxdb"] in ("degraded", "down") and detail["status"] == "degraded"
        assert detail["history"]["spool"]["points"] >= 120 and detail["history"]["spool"]["bytes"] > 0
        if status == 404:
            alert = wait_for(lambda: failing_alerts(server), lambda a: len(a) == 1)[0]
            assert alert["severity"] == "critical" and "404" in alert["message"]
            assert wait_for(lambda: health(server), lambda h: h["services"]["influxdb"] == "down")

    # 413 for large bodies: the held batches (200 lines, ~18 kB) get through in halves.
    proxy.too_large(4000)
    feed.post(300)
    wait_for(lambda: health(server), lambda h: h["history"]["spool"]["points"] == 0
             and h["services"]["influxdb"] == "ok", timeout=30)
    assert proxy.seen[413] >= 1
    wait_for(lambda: failing_alerts(server), lambda a: a == [])
    assert requests.get(server.url + "/api/status").json()["history"]["splits"] >= 1

    proxy.answer(503)
    feed.post(80)
    wait_for(lambda: health(server), lambda h: last_status(h) == 503
             and h["services"]["influxdb"] == "down")
    wait_for(lambda: failing_alerts(server), lambda a: len(a) == 1)

    proxy.heal()
    final = wait_for(lambda: health(server), lambda h: h["services"]["influxdb"] == "ok"
                     and h["history"]["spool"]["points"] == 0, timeout=30)
    assert final["status"] == "ok" and final["history"]["spool"]["oldest_held_age_s"] is None
    wait_for(lambda: failing_alerts(server), lambda a: a == [])
    # ISA-18.2: the second outage re-activated the same unacknowledged alarm; now it is cleared.
    alarm, = history_alarms(server)
    assert alarm["active"] is False and alarm["cleared_at"]
    # Every accepted point is in InfluxDB, exactly once.
    assert stored_values(influx, db, "fp") == sorted(feed.sent)
    assert len(feed.sent) == 50 + 240 + 300 + 80
    status = requests.get(server.url + "/api/status").json()["history"]
    assert status["rejected"] == {} and status["spooled"] == 0


def test_a_partial_write_keeps_every_other_point(start_server, influx, influx_db, proxy):
    db, env = influx_db
    # `quality` already a float in this shard: a flagged reading's string quality conflicts.
    now = time.time()
    requests.post(influx.url + "/write", params={"db": db},
                  data=f"sensor_reading,sensor_id=pw-seed quality=1.0 {int((now - 60) * 1e9)}").raise_for_status()
    server = start_server(**{**env, "INFLUXDB_URL": proxy.url})
    items = [{"sensor_id": f"pw-{k}", "metric": "ph", "value": 7.0 + k / 100,
              "timestamp": stamp(now - 30 + k)} for k in range(10)]
    items[4]["value"] = 15.5                       # flagged "bad": carries a string quality
    assert requests.post(server.url + "/api/sensors", json=items).status_code == 202
    wait_for(lambda: requests.get(server.url + "/api/status").json()["history"]["rejected"],
             lambda r: r == {"field_type_conflict": 1})
    kept = influx.query(db, "SELECT \"value\", \"sensor_id\" FROM \"sensor_reading\" WHERE \"sensor_id\" =~ /^pw-\\d/")
    assert sorted(r["sensor_id"] for r in kept) == sorted(f"pw-{k}" for k in range(10) if k != 4)

    # A line the store cannot parse (corrupted on its way) is named, counted; the rest stay.
    proxy.rewrite = lambda body: re.sub(rb"(sensor_id=pc-3[^ ]*) value=", rb"\1 value=x", body)
    more = [{"sensor_id": f"pc-{k}", "value": float(k), "timestamp": stamp(now - 20 + k)} for k in range(6)]
    assert requests.post(server.url + "/api/sensors", json=more).status_code == 202
    wait_for(lambda: requests.get(server.url + "/api/status").json()["history"]["rejected"],
             lambda r: r.get("unparseable") == 1)
    rows = influx.query(db, "SELECT \"value\", \"sensor_id\" FROM \"sensor_reading\" WHERE \"sensor_id\" =~ /^pc-/")
    assert sorted(r["sensor_id"] for r in rows) == [f"pc-{k}" for k in range(6) if k != 3]
    metrics = requests.get(server.url + "/metrics").text
    assert 'history_points_rejected_total{reason="field_type_conflict"} 1.0' in metrics
    assert 'history_points_rejected_total{reason="unparseable"} 1.0' in metrics
    assert health(server)["services"]["influxdb"] == "ok"
    log = server.log()
    assert log.count("first offending line") == 1   # once a minute, not per point
