"""The serializers of app/wire.py: times to ISO 8601 UTC with Z, internals left inside."""
from datetime import datetime, timedelta, timezone

import pytest

from app import wire

NOON = datetime(2026, 12, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)


@pytest.mark.parametrize("given", [
    NOON.timestamp(), NOON, NOON.replace(tzinfo=None), "2026-12-01T12:00:00.500000Z",
    "2026-12-01T17:30:00.500000+05:30", NOON.astimezone(timezone(timedelta(hours=-3))),
])
def test_every_form_of_a_time_becomes_utc_with_z(given):
    assert wire.iso_time(given) == "2026-12-01T12:00:00.500000Z"


def test_no_time_stays_none_and_a_bool_is_refused():
    assert wire.iso_time(None) is None and wire.iso_time("") is None
    with pytest.raises(TypeError):
        wire.iso_time(True)


def test_a_reading_leaves_its_epoch_inside_and_keeps_the_rest():
    record = {"sensor_id": "S1", "value": 2.0, "metric": "flow", "unit": "MLD", "node_id": "N",
              "zone": "Z", "timestamp": "2026-12-01T12:00:00Z", "ts": 1796126400.0, "latency_ms": None,
              "source": "sensor", "quality": "suspect", "quality_reason": "flatline", "received_at": "x",
              "stale": False}
    out = wire.reading(record)
    assert "ts" not in out and out == {k: v for k, v in record.items() if k != "ts"}
    assert wire.readings([record]) == [out]
    assert wire.sensor_detail(record, [{"t": 1796126400.0, "v": 2.0}])["recent"] == \
        [{"t": "2026-12-01T12:00:00Z", "v": 2.0}]


def test_resources_get_iso_times_and_lose_internal_fields():
    assert wire.forecast({"generated_at": 1796126400.0, "step_s": 900.0,
                          "zones": [{"node_id": "Z", "steps": [{"t": 1796127300.0, "demand": 4}]}]}) == {
        "generated_at": "2026-12-01T12:00:00Z", "step_s": 900.0,
        "zones": [{"node_id": "Z", "steps": [{"t": "2026-12-01T12:15:00Z", "demand": 4}]}]}
    assert wire.log_record({"time": 1796126400.0, "level": "INFO"})["time"] == "2026-12-01T12:00:00Z"
    assert wire.simulation_event({"id": 1, "start": 1796126400.0, "end": 1796127300.0}) == \
        {"id": 1, "start": "2026-12-01T12:00:00Z", "end": "2026-12-01T12:15:00Z"}
    assert wire.alert({"id": "a", "_shelved_until_ts": 1.0, "raised_at": "2026-12-01T17:30:00+05:30"}) == \
        {"id": "a", "raised_at": "2026-12-01T12:00:00Z"}
    command = {"id": "cmd-1", "created_ts": 1.0, "deadline_ts": 2.0, "http_fetched": True,
               "history": [{"state": "queued", "at": 1796126400.0}]}
    assert wire.command(command) == {"id": "cmd-1", "history": [{"state": "queued", "at": "2026-12-01T12:00:00Z"}]}
    control = {"id": "c1", "timestamp": "2026-12-01T12:00:00Z", "source_ip": "10.0.0.9",
               "command": {"id": "cmd-1", "expires_ts": 3.0}}
    assert wire.control(control) == {"id": "c1", "timestamp": "2026-12-01T12:00:00Z", "command": {"id": "cmd-1"}}
    assert wire.control_audit([control])[0]["source_ip"] == "10.0.0.9"
    assert wire.audit_entry({"at": 1796126400.0, "at_ts": 1796126400.0, "kind": "write_refused"}) == \
        {"at": "2026-12-01T12:00:00Z", "kind": "write_refused"}
