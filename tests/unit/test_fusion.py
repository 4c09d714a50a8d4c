"""Fusion of sources in the ingest path, and the WQI of ad-hoc stations."""
import pytest
from prometheus_client import CollectorRegistry

from app.adapters.memory_history import MemoryHistory
from app.bus import MessageBus
from app.domain.clock import ManualClock
from app.domain.events import ReadingsAccepted
from app.services.fusion import SensorIndex, rank
from app.services.metrics import Metrics
from app.services.pipeline import IngestPipeline
from app.services.store import DataStore
from app.services.wqi import WqiStations
from testkit.helpers import stamp
from testkit.readings import reading as record

T0 = 1_700_000_000.0
WINDOW_S = 900.0
SENSOR_INTERVAL_S = 60.0


@pytest.fixture
def parts():
    clock = ManualClock(T0)
    # A device reporting every minute is stale after 3 missed reports.
    store = DataStore(100, 10, clock=clock, fusion_window_s=WINDOW_S,
                      stale_after=lambda record: 3 * SENSOR_INTERVAL_S)
    history, sent = MemoryHistory(), []
    bus = MessageBus(CollectorRegistry())
    bus.subscribe(ReadingsAccepted, lambda event: history.write_readings(event.records))
    bus.subscribe(ReadingsAccepted, lambda event: sent.extend(event.live))
    pipeline = IngestPipeline(store, bus.publish, Metrics(), clock=clock)
    pipeline.bus = bus
    return pipeline, store, history, sent, clock


def reading(value, at, sensor="TURB-1"):
    return {"sensor_id": sensor, "value": value, "metric": "turbidity", "node_id": "SRC_1",
            "timestamp": stamp(at)}


def test_sources_rank_sensor_api_satellite_forecast():
    assert rank("sensor") < rank("api:kspcb") < rank("satellite:s2") < rank("forecast")


def test_fresh_sensor_beats_fresher_api_value(parts):
    pipeline, store, history, sent, clock = parts
    pipeline.ingest([reading(2.0, T0 - 30)], "http")
    pipeline.ingest([reading(9.0, T0 - 5)], "sources", provenance="api:kspcb")
    live = store.latest("TURB-1")
    assert live.value == 2.0 and live.source == "sensor"
    # The API value is kept (history, candidates) but neither shown nor broadcast.
    assert history.written == 2 and [r.source for r in sent] == ["sensor"]
    assert sorted(r.source for r in store.candidates("TURB-1")) == ["api:kspcb", "sensor"]


def test_stale_sensor_gives_way_to_fresh_api_value(parts):
    pipeline, store, history, sent, clock = parts
    pipeline.ingest([reading(2.0, T0)], "http")
    clock.t = T0 + 120
    pipeline.ingest([reading(9.0, T0 + 100)], "sources", provenance="api:kspcb")
    assert store.latest("TURB-1").source == "sensor"
    # Past three reporting intervals without a report, the sensor is stale.
    clock.t = T0 + 200
    live = store.latest("TURB-1")
    assert live.value == 9.0 and live.source == "api:kspcb"
    [listed] = store.all_latest(lambda record: 1e9)
    assert listed.reading.source == "api:kspcb"
    # The sensor reports again and takes the live value back.
    pipeline.ingest([reading(2.5, T0 + 200)], "http")
    assert store.latest("TURB-1").value == 2.5 and sent[-1].value == 2.5


def test_api_beats_satellite_and_forecast_within_the_window(parts):
    pipeline, store, *_ = parts
    pipeline.ingest([reading(7.0, T0 - 10)], "sources", provenance="forecast")
    pipeline.ingest([reading(5.0, T0 - 20)], "sources", provenance="satellite:s2")
    assert store.latest("TURB-1").source == "satellite:s2"
    pipeline.ingest([reading(3.0, T0 - 600)], "sources", provenance="api:cpcb")
    assert store.latest("TURB-1").value == 3.0


def test_value_outside_the_window_is_not_fresh(parts):
    pipeline, store, *_ = parts
    pipeline.ingest([reading(5.0, T0 - 60)], "sources", provenance="satellite:s2")
    # Observed before the window: a higher-priority source does not beat a fresh one.
    pipeline.ingest([reading(3.0, T0 - WINDOW_S - 60)], "sources", provenance="api:cpcb")
    assert store.latest("TURB-1").source == "satellite:s2"


def test_nothing_fresh_shows_the_newest(parts):
    pipeline, store, _, _, clock = parts
    pipeline.ingest([reading(5.0, T0 - 5000)], "sources", provenance="satellite:s2")
    pipeline.ingest([reading(3.0, T0 - 8000)], "sources", provenance="api:cpcb")
    assert store.latest("TURB-1").value == 5.0


def test_sensor_only_path_is_unchanged(parts):
    pipeline, store, history, sent, _ = parts
    records = pipeline.ingest([reading(1.0, T0 - 2), reading(1.5, T0 - 1)], "http")
    assert store.latest("TURB-1") is records[1] and sent == records
    assert store.candidates("TURB-1") == [records[1]]


def test_external_readings_land_on_the_sensor_measuring_that_station():
    index = SensorIndex({("SRC_1", "turbidity"): "TURB-1"})
    assert index.sensor_for("SRC_1", "turbidity") == "TURB-1"
    assert index.sensor_for("ADHOC", "ph") == "ADHOC.ph"
    index.learn([record("KIT-7", 7.0, node_id="ADHOC", metric="ph", source="sensor")])
    index.learn([record("X", 7.0, node_id="ADHOC", metric="ph", source="api:a")])
    assert index.sensor_for("ADHOC", "ph") == "KIT-7"


def test_wqi_at_an_ad_hoc_station_from_its_readings(parts):
    """The worked example, posted with node_id set to a station outside the network."""
    pipeline, store, *_ = parts
    stations = WqiStations()
    pipeline.bus.subscribe(ReadingsAccepted, lambda event: stations.observe(event.live))
    values = {"bod": 2.2, "do": 5.5, "fc": 6, "ph": 7.6}
    pipeline.ingest([{"sensor_id": f"KA-{m}", "metric": m, "value": v, "node_id": "KA_ADHOC_9"}
                     for m, v in values.items()], "http")
    [station] = stations.indices(store.latest)
    assert station["node_id"] == "KA_ADHOC_9" and station["complete"]
    assert station["wqi"] == pytest.approx(83.2, abs=0.5)
    assert station["parameters"] == values
