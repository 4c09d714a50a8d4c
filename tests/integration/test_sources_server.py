"""External sources end to end: `python run.py` with SOURCES_FILE pointing at loopback fixtures.

Each type's values appear in /api/sensors, in InfluxDB with their source tag,
and on /live; /api/sources reports a fault truthfully and the recovery; an
operator's refresh is audited; a bad sources file stops the start.
"""
from __future__ import annotations

import json
import time

import pytest
import requests

from testkit.helpers import stamp, wait_for
from testkit.server import OPERATOR_TOKEN, ServerProcess
from tests.integration.test_sources_faults import WATER_BODY, ogd_entry, stac_entry, weather_entry
from tests.live_client import LiveClient
from tests.source_fixtures import SourceFixtureServer, add_scene

API_KEY = "server-test-key-5f3a9c"
FAST = {"SOURCE_CONNECT_TIMEOUT_S": "0.5", "SOURCE_READ_TIMEOUT_S": "1", "SOURCE_RETRIES": "1",
        "SOURCE_BACKOFF_S": "0.05", "SOURCE_FAILURES_TO_PAUSE": "2", "TEST_OGD_KEY": API_KEY}


@pytest.fixture
def fixture():
    server = SourceFixtureServer().start()
    yield server
    server.stop()


def sensors_by(url: str) -> dict:
    listed = requests.get(url + "/api/sensors", timeout=5).json()["sensors"]
    return {(s["node_id"], s["metric"]): s for s in listed}


def test_each_type_reaches_sensors_history_live_and_faults_show(fixture, tmp_path, start_server,
                                                                influx, influx_db):
    database, influx_env = influx_db
    scene_time = time.time() - 2 * 3600
    add_scene(fixture, tmp_path, "S2B_43PGQ_E2E_1", scene_time, cloud=7.5)
    sources_file = tmp_path / "sources.json"
    sources_file.write_text(json.dumps({"sources": [
        ogd_entry(fixture.url), weather_entry(fixture.url), stac_entry(fixture.url)]}))
    server = start_server(SOURCES_FILE=str(sources_file), **FAST, **influx_env)
    live = LiveClient(server.url)
    try:
        wanted = {("SRC_CWSS_1_3", "ph"): "api:kspcb-wq", ("WX_BENGALURU", "temperature"): "api:weather",
                  ("SRC_TG_HALLI", "ndti"): "satellite:s2"}
        sensors = wait_for(lambda: sensors_by(server.url),
                           lambda s: all(k in s for k in wanted), timeout=30)
        for key, source in wanted.items():
            assert sensors[key]["source"] == source
        # On the network's own sensor where one measures it; an ad-hoc id elsewhere.
        assert sensors[("SRC_CWSS_1_3", "ph")]["sensor_id"] == "SRC_CWSS_1_3.ph"
        assert sensors[("SRC_CWSS_1_3", "ph")]["value"] == 7.6
        # Satellite readings carry the scene's time, not the fetch's.
        assert sensors[("SRC_TG_HALLI", "ndti")]["timestamp"][:19] == stamp(scene_time)[:19]
        # The four parameters of the worked example arrived by API: the station gets its WQI.
        stations = {s["node_id"]: s for s in requests.get(server.url + "/api/wqi", timeout=5).json()["stations"]}
        assert stations["SRC_CWSS_1_3"]["wqi"] == pytest.approx(83.2, abs=0.5)
        # /live carried each type, with its source: in the snapshot or in sensor_update frames.
        def on_live(events):
            shown = {}
            for name, frame in events:
                if name in ("snapshot", "sensor_update"):
                    for r in frame["sensors" if name == "snapshot" else "readings"]:
                        shown[(r["node_id"], r["metric"])] = r["source"]
            return shown if all(k in shown for k in wanted) else None
        seen = live.wait_for(on_live, timeout=10)
        assert all(seen[k] == v for k, v in wanted.items())
        # History in InfluxDB, each with its source tag.
        for source in wanted.values():
            wait_for(lambda: influx.count(database, where=f"WHERE \"source\" = '{source}'"),
                     lambda n: n > 0, timeout=10)
        assert influx.count(database, where="WHERE \"source\" = 'api:weather'") >= 2 * 24

        # A device at the same station and metric wins the live value; the API's stays in history.
        reply = requests.post(server.url + "/api/sensors", json=[{"sensor_id": "SRC_CWSS_1_3.ph", "value": 7.1}],
                              timeout=5)
        assert reply.status_code == 202
        assert sensors_by(server.url)[("SRC_CWSS_1_3", "ph")]["source"] == "sensor"
        wait_for(lambda: {(r["value"], r["source"]) for r in influx.query(
                     database, "SELECT value, \"source\" FROM sensor_reading WHERE sensor_id = 'SRC_CWSS_1_3.ph'")},
                 lambda points: points >= {(7.6, "api:kspcb-wq"), (7.1, "sensor")}, timeout=10)

        # A fault: /api/sources says so (failing, then paused), the server stays healthy ...
        fixture.fail("open_meteo", "html")
        state = wait_for(lambda: source_state(server.url, "weather"), lambda s: s["status"] == "paused",
                         timeout=30)
        assert "HTML page" in state["last_error"]["reason"] and state["consecutive_failures"] >= 2
        assert requests.get(server.url + "/api/health", timeout=5).status_code == 200
        others = {s["id"]: s["status"] for s in requests.get(server.url + "/api/sources", timeout=5).json()["sources"]}
        assert others["kspcb-wq"] == "ok" and others["s2"] == "ok"
        # ... and an operator's refresh, audited, shows the recovery at once.
        fixture.fail("open_meteo", None)
        assert requests.post(server.url + "/api/sources/weather/refresh", timeout=5).status_code == 401
        assert requests.post(server.url + "/api/sources/nope/refresh", timeout=5,
                             headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).status_code == 404
        reply = requests.post(server.url + "/api/sources/weather/refresh", timeout=10,
                              headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert reply.status_code == 200 and reply.json()["source"]["status"] == "ok"
        wait_for(lambda: influx.query(database, "SELECT * FROM control WHERE \"action\" = 'refresh_source'"),
                 lambda rows: rows and rows[0]["target"] == "weather" and rows[0]["operator"] == "ops",
                 timeout=10)
        listing = requests.get(server.url + "/api/sources", timeout=5).text
        assert API_KEY not in listing and API_KEY not in server.log()
    finally:
        live.close()


def source_state(url: str, source_id: str) -> dict:
    return next(s for s in requests.get(url + "/api/sources", timeout=5).json()["sources"] if s["id"] == source_id)


def test_bad_sources_file_stops_the_start_naming_entry_and_field(tmp_path, fixture):
    sources_file = tmp_path / "sources.json"
    entry = stac_entry(fixture.url)
    entry["water_bodies"] = {"SRC_TG_HALLI": WATER_BODY[:2]}
    sources_file.write_text(json.dumps({"sources": [weather_entry(fixture.url), entry]}))
    server = ServerProcess(tmp_path, SOURCES_FILE=str(sources_file))
    with pytest.raises(RuntimeError, match="server exited early"):
        server.start()
    assert server.process.returncode == 2
    assert "entry 1 ('s2'): field 'water_bodies.SRC_TG_HALLI'" in server.log()
    assert "Traceback" not in server.log()
