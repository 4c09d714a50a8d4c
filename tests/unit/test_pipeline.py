import pytest

from app.adapters.memory_history import MemoryHistory
from app.errors import InvalidInput, SensorLimitReached
from app.services.metrics import Metrics
from app.services.pipeline import IngestPipeline
from app.services.store import DataStore


class Registry:
    def defaults(self, sensor_id):
        if sensor_id == "P1":
            return {"metric": "pressure", "unit": "bar", "node_id": "Z1", "zone": "South"}
        return None


@pytest.fixture
def parts():
    store, history, sent = DataStore(3, 10, clock=lambda: 1000.0), MemoryHistory(), []
    pipeline = IngestPipeline(store, history, sent.extend, Metrics(), Registry(),
                              clock=lambda: 1_700_000_000.0)
    return pipeline, store, history, sent


def test_one_reading_walks_every_step(parts):
    pipeline, store, history, sent = parts
    seen = []
    pipeline.add_hook(seen.extend)
    [record] = pipeline.ingest([{"sensor_id": "P1", "value": 2.5}], "http")
    assert record["metric"] == "pressure" and record["node_id"] == "Z1" and record["unit"] == "bar"
    assert store.latest("P1") is record and sent == [record] and seen == [record]
    assert history.written == 1


def test_reading_fields_override_registry_defaults(parts):
    pipeline, *_ = parts
    [record] = pipeline.ingest([{"sensor_id": "P1", "value": 1, "unit": "m"}], "http")
    assert record["unit"] == "m" and record["metric"] == "pressure"


def test_bad_batch_stores_nothing_and_counts_rejects(parts):
    pipeline, store, history, sent = parts
    with pytest.raises(InvalidInput) as caught:
        pipeline.ingest([{"sensor_id": "a", "value": 1}, {"sensor_id": "b"}], "mqtt")
    assert caught.value.details == [{"field": "value", "message": "Field required", "index": 1}]
    assert store.sensor_count() == 0 and sent == [] and history.written == 0
    assert pipeline.metrics.counter("rejected.mqtt").total == 2


def test_sensor_cap_refuses_whole_batch(parts):
    pipeline, store, *_ = parts
    with pytest.raises(SensorLimitReached):
        pipeline.ingest([{"sensor_id": f"s{i}", "value": 1} for i in range(4)], "http")
    assert store.sensor_count() == 0


def test_failing_hook_loses_no_reading(parts):
    pipeline, store, history, sent = parts

    def broken(records):
        raise RuntimeError("analysis bug")
    pipeline.add_hook(broken)
    pipeline.ingest([{"sensor_id": "a", "value": 1}], "http")
    assert store.latest("a") is not None and len(sent) == 1
