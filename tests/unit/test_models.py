from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import ValidationError

from app.models import ControlRequest, ErrorEnvelope, Reading


def test_camel_and_snake_names_are_both_accepted():
    camel = Reading.model_validate({"sensorId": "a-1", "value": 2, "latencyMs": 5})
    snake = Reading.model_validate({"sensor_id": "a-1", "value": 2, "latency_ms": 5})
    assert camel == snake
    assert camel.value == 2.0 and isinstance(camel.value, float)


@pytest.mark.parametrize("value", [True, "3.2", None, float("nan"), float("inf"), [1]])
def test_value_must_be_a_finite_number(value):
    with pytest.raises(ValidationError):
        Reading.model_validate({"sensor_id": "a", "value": value})


@pytest.mark.parametrize("sensor_id", ["", "x" * 65, "has space", "semi;colon", "ünï"])
def test_sensor_id_rules(sensor_id):
    with pytest.raises(ValidationError):
        Reading.model_validate({"sensor_id": sensor_id, "value": 1})


def test_naive_timestamp_means_utc():
    reading = Reading.model_validate({"sensor_id": "a", "value": 1,
                                      "timestamp": "2026-01-01T10:00:00"})
    assert reading.timestamp == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)


def test_future_timestamp_is_refused_only_when_past_five_minutes():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    ok = {"sensor_id": "a", "value": 1, "timestamp": "2026-01-01T00:04:59Z"}
    late = {"sensor_id": "a", "value": 1, "timestamp": "2026-01-01T00:05:01Z"}
    Reading.model_validate(ok, context={"now": now})
    with pytest.raises(ValidationError, match="future"):
        Reading.model_validate(late, context={"now": now})


def test_error_envelope_shape():
    envelope = ErrorEnvelope.model_validate(
        {"error": {"code": "validation_error", "message": "m",
                   "details": [{"index": 2, "field": "value", "message": "bad"}]}})
    assert envelope.error.details[0].index == 2


def test_control_action_is_checked():
    assert ControlRequest.model_validate({"action": "isolate", "target": "SRC"}).target == "SRC"
    with pytest.raises(ValidationError):
        ControlRequest.model_validate({"action": "open_floodgates"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["sensor_id", "sensorId", "value", "metric", "unit",
                                        "timestamp", "latency_ms", "zone"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=70))))
def test_validation_either_passes_cleanly_or_raises_validation_error(data):
    try:
        reading = Reading.model_validate(data)
    except ValidationError:
        return
    assert 1 <= len(reading.sensor_id) <= 64
    assert reading.value == reading.value and abs(reading.value) != float("inf")
