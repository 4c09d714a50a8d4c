"""External sources in-process against loopback fixture servers: readings, faults, recovery.

The scheduler, the shared HTTP client and the real ingest pipeline run in this
process; only the agencies' servers are stand-ins (tests/source_fixtures.py).
"""
from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from app.adapters.memory_history import MemoryHistory
from app.adapters.sources import adapter_for
from app.adapters.sources.config import parse_sources
from app.adapters.sources.http import SourceHttp
from app.adapters.sources.scheduler import SourceScheduler
from app.bus import MessageBus
from app.domain.clock import SystemClock
from app.domain.events import ReadingsAccepted
from app.services.fusion import SensorIndex
from app.services.metrics import Metrics
from app.services.pipeline import IngestPipeline
from app.services.store import DataStore
from testkit.helpers import wait_for
from tests.source_fixtures import SourceFixtureServer

API_KEY = "k3y-not-for-logs-0123456789"
# Read timeout below the fixture's HANG_S; few, fast retries.
CONNECT_S, READ_S, RETRIES, BACKOFF_S = 0.5, 1.0, 2, 0.05
FAILURES_TO_PAUSE = 2


def ogd_entry(url: str, **extra) -> dict:
    return {"id": "kspcb-wq", "type": "ogd", "url": url, "resource_id": "wq-ka-rt",
            "api_key_env": "TEST_OGD_KEY", "interval_s": 5, "page_size": 2,
            "station_field": "station_code", "time_field": "last_update",
            "time_format": "%d-%m-%Y %H:%M:%S", "timezone": "Asia/Kolkata",
            "stations": {"KA-TKH-01": "SRC_CWSS_1_3", "KA-ARK-07": "SRC_TG_HALLI", "KA-HMV-02": "KA_ADHOC_HMV"},
            "metrics": {"ph": "ph", "do": "dissolved_oxygen", "bod": "bod", "fc": "fecal_coliform",
                        "turbidity": "turbidity"},
            "units": {"turbidity": "NTU", "do": "mg/L"}, **extra}


def weather_entry(url: str) -> dict:
    return {"id": "weather", "type": "open_meteo", "url": url, "interval_s": 5,
            "latitude": 12.97, "longitude": 77.59, "node_id": "WX_BENGALURU", "past_days": 1}


class Harness:
    def __init__(self, entries: list[dict], known: dict | None = None):
        self.store = DataStore(1000, 50, clock=SystemClock(), fusion_window_s=900)
        self.history = MemoryHistory()
        self.live: list[dict] = []
        bus = MessageBus(CollectorRegistry())
        bus.subscribe(ReadingsAccepted, lambda event: self.history.write_readings(event.records))
        bus.subscribe(ReadingsAccepted, lambda event: self.live.extend(event.live))
        self.pipeline = IngestPipeline(self.store, bus.publish, Metrics(), clock=SystemClock())
        self.index = SensorIndex(known or {})
        self.weather: list = []
        self.http = SourceHttp(CONNECT_S, READ_S, RETRIES, BACKOFF_S, retry_after_max_s=2)
        sources = [(c, adapter_for(c)) for c in parse_sources({"sources": entries})]
        self.scheduler = SourceScheduler(
            sources, self.http,
            lambda items, provenance: self.pipeline.ingest(items, "sources", provenance=provenance),
            self.index.sensor_for, lambda fn, *a: threading.Thread(target=fn, args=a, daemon=True).start(),
            failures_to_pause=FAILURES_TO_PAUSE, max_pause_s=60, on_weather=self.weather.extend)

    def status(self, source_id: str) -> dict:
        return next(s for s in self.scheduler.listing() if s["id"] == source_id)

    def value(self, sensor_id: str):
        record = self.store.latest(sensor_id)
        return record and (record.value, record.source)


@pytest.fixture
def fixture():
    server = SourceFixtureServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("TEST_OGD_KEY", API_KEY)


def test_ogd_pages_map_stations_and_metrics(fixture, caplog):
    caplog.set_level(logging.DEBUG)
    h = Harness([ogd_entry(fixture.url)], known={("SRC_CWSS_1_3", "turbidity"): "SRC_CWSS_1_3-TURB"})
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "ok" and status["last_error"] is None
    # Five records over three pages of two; the key went to the server as api-key.
    pages = fixture.seen("ogd")
    assert [p["query"]["offset"] for p in pages] == [["0"], ["2"], ["4"]]
    assert all(p["query"]["api-key"] == [API_KEY] and p["query"]["format"] == ["json"] for p in pages)
    # External readings land on the sensor that measures the station, tagged with their source.
    assert h.value("SRC_CWSS_1_3-TURB") == (4.1, "api:kspcb-wq")
    assert h.value("SRC_CWSS_1_3.ph") == (7.6, "api:kspcb-wq")
    assert h.value("KA_ADHOC_HMV.do") == (6.1, "api:kspcb-wq")
    record = h.store.latest("SRC_CWSS_1_3.ph")
    # The observation time is the station's (10 minutes ago, IST in the record), not ours.
    assert time.time() - record.ts == pytest.approx(600, abs=5)
    assert status["records_fetched"] == 5
    # 3 mapped stations x 5 metrics, less ARK's NA BOD and "-" turbidity.
    assert status["records_mapped"] == 13 and status["readings_ingested"] == 13
    assert status["dropped_reasons"] == {"unmapped station": 2, "bod: missing value": 1,
                                         "turbidity: missing value": 1}
    # The key is never shown, nor logged.
    assert API_KEY not in str(h.scheduler.listing()) and API_KEY not in caplog.text
    assert status["credentials"] == {"env": "TEST_OGD_KEY", "set": True}


def test_ogd_unchanged_resource_is_a_conditional_304(fixture):
    h = Harness([ogd_entry(fixture.url)])
    h.scheduler.run("kspcb-wq")
    status = h.scheduler.run("kspcb-wq")
    first_page_again = [p for p in fixture.seen("ogd") if p["query"]["offset"] == ["0"]][-1]
    assert first_page_again["headers"].get("If-None-Match")
    assert status["status"] == "ok" and status["not_modified"] == 1
    assert status["readings_ingested"] == 13 and h.history.written == 13
    # New values: fetched, and only the new observations ingested.
    fixture.stamp_ogd(time.time() - 60)
    status = h.scheduler.run("kspcb-wq")
    assert status["readings_ingested"] == 26 and status["last_fetch"]["unchanged"] == 0


@pytest.mark.parametrize("mode, reason", [
    ("hang", "timed out"),
    ("500", "HTTP 500 after retries"),
    ("malformed", "malformed JSON"),
    ("html", "HTML page instead of JSON"),
    ("empty", "empty answer: no records"),
    ("truncated", "truncated"),
])
def test_ogd_fault_fails_pauses_then_recovers(fixture, mode, reason):
    h = Harness([ogd_entry(fixture.url)])
    fixture.fail("ogd", mode)
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "failing" and reason in status["last_error"]["reason"]
    assert status["consecutive_failures"] == 1 and status["readings_ingested"] == 0
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "paused" and status["paused_until"] is not None
    assert h.store.sensor_count() == 0
    fixture.fail("ogd", None)
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "ok" and status["readings_ingested"] == 13
    assert status["failures"] == 2 and status["consecutive_failures"] == 0


def test_connection_refused_is_a_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"      # bound, never listening
        h = Harness([ogd_entry(url)])
        status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "failing" and "connection refused" in status["last_error"]["reason"]
    assert API_KEY not in str(status)


def test_500_once_is_retried_within_the_fetch(fixture):
    h = Harness([ogd_entry(fixture.url)])
    fixture.fail("ogd", "500", times=1)
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "ok" and status["readings_ingested"] == 13
    first = [p for p in fixture.seen("ogd") if p["query"]["offset"] == ["0"]]
    assert len(first) == 2                       # the 500, then urllib3's retry


def test_429_honours_retry_after(fixture):
    h = Harness([ogd_entry(fixture.url)])
    fixture.fail("ogd", "429", times=1)
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "ok"
    limited, retried = [p for p in fixture.seen("ogd") if p["query"]["offset"] == ["0"]][:2]
    # The server said Retry-After: 1; the retry came no sooner.
    assert retried["at"] - limited["at"] >= 0.95


def test_total_larger_than_pages_served_keeps_what_came(fixture):
    fixture.ogd_total = 9
    h = Harness([ogd_entry(fixture.url)])
    status = h.scheduler.run("kspcb-wq")
    assert status["status"] == "ok" and status["readings_ingested"] == 13
    assert status["dropped_reasons"]["server stopped short of total (5 of 9)"] == 4
    assert "5 of 9" in status["last_fetch"]["warnings"][0]


def test_open_meteo_observed_hours_are_readings_forecast_hours_covariates(fixture):
    h = Harness([weather_entry(fixture.url)])
    status = h.scheduler.run("weather")
    assert status["status"] == "ok"
    [request] = fixture.seen("open_meteo")
    assert request["query"]["hourly"] == ["temperature_2m,precipitation"] and request["query"]["past_days"] == ["1"]
    now = time.time()
    past = [hour for hour in fixture.weather_hours if hour[0] <= now]
    assert status["records_fetched"] == len(fixture.weather_hours)
    assert status["readings_ingested"] == 2 * len(past)
    ts, temperature, rain = past[-1]
    record = h.store.latest("WX_BENGALURU.temperature")
    assert (record.value, record.ts, record.unit, record.source) == (temperature, ts, "°C", "api:weather")
    assert h.store.latest("WX_BENGALURU.precipitation").value == rain
    # Every hour, forecast ones included, reaches the demand forecast.
    assert len(h.weather) == len(fixture.weather_hours) and max(w.ts for w in h.weather) > now + 24 * 3600


@pytest.mark.parametrize("mode, reason", [
    ("malformed", "malformed JSON"), ("html", "HTML page"), ("empty", "empty answer: no hours"),
    ("500", "HTTP 500"), ("hang", "timed out")])
def test_open_meteo_faults(fixture, mode, reason):
    h = Harness([weather_entry(fixture.url)])
    fixture.fail("open_meteo", mode)
    status = h.scheduler.run("weather")
    assert status["status"] == "failing" and reason in status["last_error"]["reason"]
    assert h.weather == [] and h.store.sensor_count() == 0


def test_priority_fresh_sensor_over_api_and_stale_sensor_gives_way(fixture):
    h = Harness([ogd_entry(fixture.url)], known={("SRC_CWSS_1_3", "turbidity"): "TURB-1"})
    h.store.stale_after = lambda record: 1.0       # the device reports every ~0.3 s
    h.pipeline.ingest([{"sensor_id": "TURB-1", "value": 1.5, "metric": "turbidity",
                        "node_id": "SRC_CWSS_1_3"}], "http")
    h.scheduler.run("kspcb-wq")
    assert h.value("TURB-1") == (1.5, "sensor")
    # The device falls silent: the fresh API value takes over, and says so.
    wait_for(lambda: h.value("TURB-1"), lambda v: v == (4.1, "api:kspcb-wq"), timeout=5)


def test_scheduler_recovers_by_itself(fixture):
    """The running loop: fault -> paused -> server heals -> ok, without a refresh."""
    h = Harness([weather_entry(fixture.url)])
    fixture.fail("open_meteo", "500")
    h.scheduler.start()
    try:
        wait_for(lambda: h.status("weather"), lambda s: s["status"] == "paused", timeout=15)
        fixture.fail("open_meteo", None)
        status = wait_for(lambda: h.status("weather"), lambda s: s["status"] == "ok", timeout=30)
        assert status["failures"] >= FAILURES_TO_PAUSE and status["readings_ingested"] > 0
    finally:
        h.scheduler.stop()


WATER_BODY = [[77.31, 12.95], [77.34, 12.95], [77.34, 12.97], [77.31, 12.97]]


def stac_entry(url: str) -> dict:
    return {"id": "s2", "type": "stac", "url": url, "collection": "sentinel-2-l2a", "interval_s": 5,
            "max_cloud": 20, "lookback_days": 10, "water_bodies": {"SRC_TG_HALLI": WATER_BODY}}


def test_stac_reads_only_windows_and_publishes_indices(fixture, tmp_path):
    from tests.source_fixtures import add_scene, expected_indices
    scene_time = time.time() - 3 * 3600
    total_bytes = add_scene(fixture, tmp_path, "S2B_43PGQ_TEST_1", scene_time, cloud=7.5)
    h = Harness([stac_entry(fixture.url)])
    status = h.scheduler.run("s2")
    assert status["status"] == "ok", status["last_error"]
    [search] = fixture.seen("stac")
    body = __import__("json").loads(search["body"])
    assert body["collections"] == ["sentinel-2-l2a"] and body["bbox"] == [77.31, 12.95, 77.34, 12.97]
    assert body["query"] == {"eo:cloud_cover": {"lt": 20}} and "/" in body["datetime"]
    # Only byte ranges of the COGs were read, well under the scenes' size.
    cog_reads = fixture.seen("cog")
    assert cog_reads and all(r["headers"].get("Range", "").startswith("bytes=") for r in cog_reads
                             if r["method"] == "GET")
    assert fixture.range_bytes < 0.6 * total_bytes
    expected = expected_indices()
    ndti = h.store.latest("SRC_TG_HALLI.ndti")
    assert ndti.source == "satellite:s2" and ndti.ts == pytest.approx(scene_time, abs=0.01)
    assert ndti.value == pytest.approx(expected["ndti"], abs=0.002)
    assert h.store.latest("SRC_TG_HALLI.ndci").value == pytest.approx(expected["ndci"], abs=0.01)
    assert h.store.latest("SRC_TG_HALLI.cloud_cover").value == 7.5
    assert status["last_fetch"]["scenes"] == ["S2B_43PGQ_TEST_1"]
    # The same scene is not read again; a new one is.
    reads = len(fixture.seen("cog"))
    status = h.scheduler.run("s2")
    assert status["last_fetch"]["skipped"] == 1 and len(fixture.seen("cog")) == reads
    add_scene(fixture, tmp_path, "S2B_43PGQ_TEST_2", scene_time + 3600, cloud=3.0)
    status = h.scheduler.run("s2")
    assert status["last_fetch"]["scenes"] == ["S2B_43PGQ_TEST_2"] and status["readings_ingested"] == 6


def test_stac_without_scenes_is_ok_but_says_so(fixture):
    h = Harness([stac_entry(fixture.url)])
    status = h.scheduler.run("s2")
    assert status["status"] == "ok" and "no scene" in status["last_fetch"]["warnings"][0]


@pytest.mark.parametrize("kind, mode, reason", [
    ("stac", "500", "HTTP 500 after retries"), ("stac", "html", "HTML page"),
    ("stac", "malformed", "malformed JSON"), ("cog", "500", "cannot read band"),
    ("cog", "hang", "cannot read band")])
def test_stac_faults_fail_and_leave_the_scene_for_later(fixture, tmp_path, kind, mode, reason):
    from tests.source_fixtures import add_scene
    add_scene(fixture, tmp_path, "S2B_43PGQ_TEST_1", time.time() - 3600, cloud=7.5)
    h = Harness([stac_entry(fixture.url)])
    fixture.fail(kind, mode)
    status = h.scheduler.run("s2")
    assert status["status"] == "failing" and reason in status["last_error"]["reason"]
    fixture.fail(kind, None)
    status = h.scheduler.run("s2")
    assert status["status"] == "ok" and status["last_fetch"]["scenes"] == ["S2B_43PGQ_TEST_1"]
