"""Ingest over HTTP reaches live Socket.IO clients, against a real server process."""
from __future__ import annotations

import time

import requests

from tests.live_client import LiveClient


def post(server, path, body, **kwargs):
    return requests.post(server.url + path, json=body, timeout=10, **kwargs)


def test_posted_reading_reaches_live_client(server):
    client = LiveClient(server.url)
    try:
        snapshot = client.wait_for(lambda ev: [d for e, d in ev if e == "snapshot"])[0]
        assert set(snapshot) >= {"sensors", "routing", "decisions", "alerts", "health"}
        reply = post(server, "/api/ingest", {"sensorId": "live-1", "value": 4.25, "latencyMs": 3})
        assert reply.status_code == 201
        assert reply.json()["sensorId"] == "live-1"
        reading = client.wait_for(
            lambda ev: [r for r in client.readings() if r["sensor_id"] == "live-1"])[0]
        assert reading["value"] == 4.25
        assert reading["latency_ms"] == 3
    finally:
        client.close()


def test_burst_of_200_is_coalesced_into_few_frames(server):
    client = LiveClient(server.url)
    try:
        client.wait_for(lambda ev: client.of("snapshot"))
        burst = [{"sensor_id": f"burst-{i}", "value": float(i)} for i in range(200)]
        assert post(server, "/api/sensors", burst).json() == {"accepted": 200}
        client.wait_for(lambda ev: len({r["sensor_id"] for r in client.readings()
                                        if r["sensor_id"].startswith("burst-")}) == 200)
        frames = [f for f in client.of("sensor_update")
                  if any(r["sensor_id"].startswith("burst-") for r in f["readings"])]
        assert 1 <= len(frames) <= 5
    finally:
        client.close()


def test_single_readings_arrive_without_waiting_for_a_tick(server):
    """A lone change after a quiet spell goes out on its own frame (leading edge)."""
    client = LiveClient(server.url)
    try:
        client.wait_for(lambda ev: client.of("snapshot"))
        for i in range(3):
            post(server, "/api/ingest", {"sensor_id": "lead-1", "value": float(i)})
            client.wait_for(lambda ev: any(r["sensor_id"] == "lead-1" and r["value"] == i
                                           for r in client.readings()))
            time.sleep(0.2)
        frames = [f for f in client.of("sensor_update")
                  if any(r["sensor_id"] == "lead-1" for r in f["readings"])]
        assert len(frames) == 3
    finally:
        client.close()


def test_bad_batch_items_are_all_named_and_nothing_is_stored(server):
    batch = [{"sensor_id": f"atomic-{i}", "value": 1.0} for i in range(5)]
    batch[2] = {"sensor_id": "atomic-2", "value": "high"}
    batch[3] = {"sensor_id": "bad id with spaces", "value": 2.0}
    reply = post(server, "/api/sensors", {"readings": batch})
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["code"] == "validation_error"
    assert {d["index"] for d in error["details"]} == {2, 3}
    assert {(d["index"], d["field"]) for d in error["details"]} == {(2, "value"), (3, "sensor_id")}
    for i in range(5):
        assert requests.get(f"{server.url}/api/latest/atomic-{i}", timeout=5).status_code == 404


def test_subscribe_filters_readings_by_node(server):
    subscriber, everyone = LiveClient(server.url), LiveClient(server.url)
    try:
        ack = subscriber.call("subscribe", {"nodes": ["ZONE_A"]})
        assert ack == {"ok": True, "nodes": ["ZONE_A"]}
        post(server, "/api/sensors", [
            {"sensor_id": "sub-a", "value": 1.0, "node_id": "ZONE_A"},
            {"sensor_id": "sub-b", "value": 2.0, "node_id": "ZONE_B"},
        ])
        everyone.wait_for(lambda ev: {"sub-a", "sub-b"} <= {r["sensor_id"] for r in everyone.readings()})
        subscriber.wait_for(lambda ev: any(r["sensor_id"] == "sub-a" for r in subscriber.readings()))
        # Both readings went out together, so the filtered frame has already been sent.
        assert "sub-b" not in {r["sensor_id"] for r in subscriber.readings()}

        assert subscriber.call("unsubscribe", {}) == {"ok": True, "nodes": []}
        post(server, "/api/ingest", {"sensor_id": "sub-b", "value": 3.0, "node_id": "ZONE_B"})
        subscriber.wait_for(lambda ev: any(r["sensor_id"] == "sub-b" for r in subscriber.readings()))
        assert subscriber.call("subscribe", {"nodes": "ZONE_A"})["ok"] is False
    finally:
        subscriber.close()
        everyone.close()


def test_reads_return_what_was_ingested(server):
    post(server, "/api/sensors", [{"sensor_id": "read-1", "value": v, "zone": "South"}
                                   for v in (1.0, 2.0, 3.0)])
    latest = requests.get(server.url + "/api/latest/read-1", timeout=5).json()
    assert latest["found"] is True and latest["value"] == 3.0 and latest["zone"] == "South"
    detail = requests.get(server.url + "/api/sensors/read-1", timeout=5).json()
    assert [p["v"] for p in detail["recent"]] == [1.0, 2.0, 3.0]
    listing = requests.get(server.url + "/api/sensors", timeout=5).json()
    entry = next(s for s in listing["sensors"] if s["sensor_id"] == "read-1")
    assert entry["stale"] is False and "received_at" in entry
    status = requests.get(server.url + "/api/status", timeout=5).json()
    assert status["readings"]["ingested"]["by_source"]["http"] >= 3
    missing = requests.get(server.url + "/api/latest/never-seen", timeout=5)
    body = missing.json()
    # The prototype's fields stay; the contract's error envelope sits beside them.
    assert missing.status_code == 404 and body["sensorId"] == "never-seen" and body["found"] is False
    assert body["error"]["code"] == "not_found"
