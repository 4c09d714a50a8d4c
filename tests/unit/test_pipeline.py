import pytest
from prometheus_client import CollectorRegistry

from app.adapters.memory_history import MemoryHistory
from app.bus import MessageBus
from app.domain.events import ReadingsAccepted
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
    bus = MessageBus(CollectorRegistry())
    bus.subscribe(ReadingsAccepted, lambda event: history.write_readings(event.records))
    bus.subscribe(ReadingsAccepted, lambda event: sent.extend(event.records))
    pipeline = IngestPipeline(store, bus.publish, Metrics(), Registry(), clock=lambda: 1_700_000_000.0)
    pipeline.bus = bus
    return pipeline, store, history, sent


def test_one_reading_walks_every_step(parts):
    pipeline, store, history, sent = parts
    [record] = pipeline.ingest([{"sensor_id": "P1", "value": 2.5}], "http")
    assert record.metric == "pressure" and record.node_id == "Z1" and record.unit == "bar"
    assert store.latest("P1") is record and sent == [record]
    assert history.written == 1


def test_reading_fields_override_registry_defaults(parts):
    pipeline, *_ = parts
    [record] = pipeline.ingest([{"sensor_id": "P1", "value": 1, "unit": "m"}], "http")
    assert record.unit == "m" and record.metric == "pressure"


def test_bad_batch_stores_nothing_and_counts_rejects(parts):
    pipeline, store, history, sent = parts
    with pytest.raises(InvalidInput) as caught:
        pipeline.ingest([{"sensor_id": "a", "value": 1}, {"sensor_id": "b"}], "mqtt")
    assert caught.value.details == [{"field": "value", "message": "Field required", "index": 1}]
    assert store.sensor_count() == 0 and sent == [] and history.written == 0
    assert pipeline.metrics.total("rejected", "mqtt") == 2


def test_sensor_cap_refuses_whole_batch(parts):
    pipeline, store, *_ = parts
    with pytest.raises(SensorLimitReached):
        pipeline.ingest([{"sensor_id": f"s{i}", "value": 1} for i in range(4)], "http")
    assert store.sensor_count() == 0


def test_failing_handler_loses_no_reading(parts):
    pipeline, store, history, sent = parts

    def broken(event):
        raise RuntimeError("analysis bug")
    pipeline.bus.subscribe(ReadingsAccepted, broken)
    pipeline.ingest([{"sensor_id": "a", "value": 1}], "http")
    assert store.latest("a") is not None and len(sent) == 1


def test_messages_are_taken_or_refused_one_by_one_in_one_pass(parts):
    pipeline, store, history, sent = parts
    refused = pipeline.ingest_messages(
        [[{"sensor_id": "a", "value": 1}], [{"sensor_id": "b"}, {"sensor_id": "c", "value": 2}],
         [{"sensor_id": "d", "value": "x"}]], "mqtt")
    assert sorted(refused) == [1, 2] and "value" in refused[1]
    assert store.latest("a") is not None and store.latest("c") is None
    # One batch stored, one event: nothing ingested twice.
    assert len(sent) == 1 and history.written == 1


def test_messages_over_the_sensor_cap_are_refused_alone(parts):
    pipeline, store, *_ = parts
    refused = pipeline.ingest_messages(
        [[{"sensor_id": "a", "value": 1}, {"sensor_id": "b", "value": 1}],
         [{"sensor_id": "c", "value": 1}, {"sensor_id": "d", "value": 1}],
         [{"sensor_id": "a", "value": 2}]], "mqtt")
    assert list(refused) == [1] and "at most 3" in refused[1]
    assert store.latest("a").value == 2 and store.latest("c") is None
