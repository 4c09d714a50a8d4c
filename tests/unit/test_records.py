"""The core's reading record: what the pipeline builds, and the JSON instances exchange."""
from __future__ import annotations

import json

import pytest

from app.adapters.spool import DiskSpool
from app.domain.records import Reading
from app.services.cluster.replication import Outbox
from app.services.metrics import Metrics
from app.services.pipeline import IngestPipeline
from app.services.store import DataStore
from testkit.readings import reading

# What an instance of any version has written to the shared log for one reading.
LOG_JSON = ('{"sensor_id":"P1","value":2.5,"metric":"pressure","unit":"bar","node_id":"Z1","zone":"South",'
            '"timestamp":"2023-11-14T22:13:20Z","ts":1700000000.0,"latency_ms":12.0,"source":"sensor",'
            '"quality":"suspect","quality_reason":"jump"}')


class Registry:
    def defaults(self, sensor_id):
        return {"metric": "pressure", "unit": "bar", "node_id": "Z1", "zone": "South"}


def test_the_pipeline_builds_records_with_the_registry_filling_what_the_device_left_out():
    store = DataStore(10, 5, clock=lambda: 1_700_000_000.0)
    seen = []
    pipeline = IngestPipeline(store, seen.append, Metrics(), Registry(), clock=lambda: 1_700_000_000.0)
    [record] = pipeline.ingest([{"sensorId": "P1", "value": 2.5, "latencyMs": 12,
                                 "timestamp": "2023-11-14T22:13:20Z"}], "http")
    assert record == Reading(sensor_id="P1", value=2.5, metric="pressure", unit="bar", node_id="Z1",
                             zone="South", timestamp="2023-11-14T22:13:20Z", ts=1_700_000_000.0,
                             latency_ms=12.0, source="sensor", quality="good")
    assert seen[0].records == [record] and store.latest("P1") is record


def test_the_log_json_is_the_same_in_every_version_both_ways():
    record = Reading.from_dict(json.loads(LOG_JSON))
    assert json.dumps(record.to_dict(), separators=(",", ":")) == LOG_JSON
    # A good reading carries no reason; an older instance's record without `source` is a device's.
    good = reading("S", 1.0)
    assert "quality_reason" not in good.to_dict()
    old = {k: v for k, v in good.to_dict().items() if k not in ("source", "quality")}
    assert Reading.from_dict({**old, "received_at": "x"}) == good


def test_the_outbox_keeps_records_as_the_log_json(tmp_path):
    outbox = Outbox(DiskSpool(tmp_path / "outbox", 1 << 20), encode=Reading.to_dict, decode=Reading.from_dict)
    record = Reading.from_dict(json.loads(LOG_JSON))
    outbox.put("a.1", [record])
    path, origin, records = outbox.oldest()
    assert origin == "a.1" and records == [record]
    assert json.loads(path.read_bytes()) == {"o": "a.1", "r": [json.loads(LOG_JSON)]}


def test_a_record_has_only_its_fields():
    """Slotted: a misspelt field fails at once, and a record costs no per-instance dict."""
    record = reading()
    with pytest.raises(AttributeError):
        record.qualty = "bad"
    assert not hasattr(record, "__dict__")


@pytest.mark.parametrize("source", ["api:bwssb", "satellite:sentinel2", "forecast"])
def test_another_sources_reading_keeps_its_source_through_the_log(source):
    """Fusion on the receiving instance ranks it by its source; read as a device's it would win."""
    record = Reading.from_dict({**json.loads(LOG_JSON), "source": source})
    assert record.source == source
    assert Reading.from_dict(record.to_dict()) == record


def test_a_record_without_a_metric_reads_as_the_plain_value_metric():
    """As the pipeline names a reading whose device and registry say nothing of its metric."""
    data = {k: v for k, v in json.loads(LOG_JSON).items() if k != "metric"}
    assert Reading.from_dict(data).metric == "value"
    assert Reading.from_dict({**data, "metric": None}).metric == "value"
