"""/api/status and /metrics are read from one prometheus_client registry per app."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def scrape(client) -> dict:
    """`{(sample name, sorted labels): value}` of one /metrics scrape."""
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def reading(sensor_id: str, value) -> dict:
    return {"sensor_id": sensor_id, "value": value}


def test_status_and_metrics_agree_after_known_accepted_and_rejected_readings(client):
    assert client.post("/api/sensors", json=[reading(f"m-{i}", i) for i in range(3)]).status_code == 202
    for i in range(2):
        assert client.post("/api/ingest", json=reading("m-single", i)).status_code == 201
    assert client.post("/api/ingest", json=reading("m-bad", "NaN")).status_code == 422
    # All or nothing: both items of a batch with one bad item are rejected.
    assert client.post("/api/sensors", json=[reading("m-ok", 1), reading("m-bad", True)]).status_code == 422

    status = client.get("/api/status").get_json()
    metrics = scrape(client)
    readings = status["readings"]
    assert readings["ingested"]["total"] == 5 and readings["ingested"]["by_source"] == {"http": 5}
    assert readings["rejected"]["total"] == 3 and readings["rejected"]["by_source"] == {"http": 3}
    assert metrics["bhs_readings_total", (("outcome", "ingested"), ("source", "http"))] == 5
    assert metrics["bhs_readings_total", (("outcome", "rejected"), ("source", "http"))] == 3
    assert metrics["bhs_sensors", ()] == status["sensors"] == 4
    assert metrics["bhs_live_clients", ()] == status["clients"] == 0
    for state in ("queued", "written", "failed"):
        assert metrics["bhs_history_points", (("state", state),)] == status["history"][state]
    assert metrics["bhs_broadcast_frames_total", ()] == status["broadcast"]["frames"]
    assert 0 <= status["uptime_s"] <= metrics["bhs_uptime_seconds", ()] + 0.1


def test_a_planning_run_counts_in_both(client, bhs):
    before = client.get("/api/status").get_json()["decisions"]
    assert before["solves"] == 0 and before["last_solve_ms"] is None
    bhs.engine.run_once(["test"])
    status = client.get("/api/status").get_json()["decisions"]
    metrics = scrape(client)
    assert status["solves"] == metrics["bhs_routing_solves_total", ()] == 1
    assert status["last_solve_ms"] > 0
    assert status["last_solve_ms"] == round(1000 * metrics["bhs_routing_solve_seconds", ()], 3)


def test_connected_clients_are_read_from_the_registry(app, client, live):
    assert client.get("/api/status").get_json()["clients"] == 1
    assert scrape(client)["bhs_live_clients", ()] == 1


def test_two_apps_in_one_process_count_apart(make_app):
    first, second = make_app().test_client(), make_app().test_client()
    assert first.post("/api/ingest", json=reading("a-1", 1)).status_code == 201
    assert first.get("/api/status").get_json()["readings"]["ingested"]["total"] == 1
    assert second.get("/api/status").get_json()["readings"]["ingested"]["total"] == 0
    assert ("bhs_readings_total", (("outcome", "ingested"), ("source", "http"))) not in scrape(second)
