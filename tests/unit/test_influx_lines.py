"""The line protocol InfluxHistory writes for readings and events, exactly as influxd receives it.

Timestamps are nanoseconds (the write API's default precision): a point
written in seconds would land in January 1970. Nothing here is sent; the
lines are read from the writer's buffer before any delivery.
"""
from __future__ import annotations

import pytest

from app.adapters import influx_text as lp
from app.adapters.influx import InfluxHistory
from app.adapters.spool import DiskSpool
from testkit.readings import reading as record

TS = 1_700_000_000.5           # 2023-11-14T22:13:20.5Z (exact in a float, so exact in ns)
TS_NS = 1_700_000_000_500_000_000


@pytest.fixture
def history(tmp_path):
    return InfluxHistory("http://127.0.0.1:9", "", "", "bhs", DiskSpool(tmp_path / "spool", 1 << 20),
                         spawn=lambda fn: None, sleep=lambda s: None)


def reading(**extra):
    fields = {"sensor_id": "Z_SOUTH.flow", "metric": "flow", "node_id": "Z_SOUTH", "zone": "South",
              "source": "sensor", "value": 120.5, "ts": TS, "latency_ms": None, "quality": "good", **extra}
    return record(fields.pop("sensor_id"), fields.pop("value"), fields.pop("ts"), **fields)


def written(history) -> list[str]:
    return list(history.writer._buffer)


def test_a_reading_is_one_point_with_sorted_tags_a_float_value_and_nanoseconds(history):
    history.write_readings([reading()])
    assert written(history) == [
        f"sensor_reading,metric=flow,node_id=Z_SOUTH,sensor_id=Z_SOUTH.flow,source=sensor,zone=South value=120.5 {TS_NS}"]
    assert int(written(history)[0].rsplit(" ", 1)[1]) // 10 ** 9 == int(TS)


def test_latency_quality_and_source_are_written_when_present(history):
    history.write_readings([
        reading(value=3, latency_ms=12, quality="suspect", source="api:bwssb", zone="Old town"),
        reading(node_id=None, zone="", quality="good", latency_ms=0.5),
    ])
    assert written(history) == [
        "sensor_reading,metric=flow,node_id=Z_SOUTH,sensor_id=Z_SOUTH.flow,source=api:bwssb,zone=Old\\ town "
        f'value=3.0,latency_ms=12.0,quality="suspect" {TS_NS}',
        f"sensor_reading,metric=flow,sensor_id=Z_SOUTH.flow,source=sensor value=120.5,latency_ms=0.5 {TS_NS}",
    ]


def test_each_series_keeps_its_own_tags(history):
    # The tag prefix is cached per series: a second sensor must not borrow the first one's.
    history.write_readings([reading(), reading(sensor_id="Z_NORTH.flow", node_id="Z_NORTH", zone="North",
                                               ts=TS + 1)])
    history.write_readings([reading(value=121.0, ts=TS + 2)])
    assert written(history) == [
        f"sensor_reading,metric=flow,node_id=Z_SOUTH,sensor_id=Z_SOUTH.flow,source=sensor,zone=South value=120.5 {TS_NS}",
        "sensor_reading,metric=flow,node_id=Z_NORTH,sensor_id=Z_NORTH.flow,source=sensor,zone=North value=120.5 "
        f"{TS_NS + 10 ** 9}",
        f"sensor_reading,metric=flow,node_id=Z_SOUTH,sensor_id=Z_SOUTH.flow,source=sensor,zone=South value=121.0 "
        f"{TS_NS + 2 * 10 ** 9}",
    ]


def test_each_source_of_a_fused_sensor_is_its_own_series(history):
    # One sensor reported by its device and by an agency's API: the cached tags are per source too.
    history.write_readings([reading(), reading(source="api:bwssb", value=119.0)])
    history.write_readings([reading(source="forecast", value=118.0)])
    assert [line.split(" ")[0].split(",source=")[1].split(",")[0] for line in written(history)] == \
        ["sensor", "api:bwssb", "forecast"]


def test_an_event_is_written_in_nanoseconds_too(history):
    history.write_event("alert", {"condition": "quality_ph", "node_id": None},
                        {"state": "active", "value": 9, "message": None}, TS)
    assert written(history) == [f'alert,condition=quality_ph state="active",value=9.0 {TS_NS}']


def test_event_lines_escape_every_part_that_could_change_the_points_shape():
    assert lp.line("my event,x", {"b": "2", "a": "one two", "none": None, "empty": ""},
                   {"n": 1.5, "off": False, "text": 'say "hi"'}, 7) == \
        'my\\ event\\,x,a=one\\ two,b=2 n=1.5,off=false,text="say \\"hi\\"" 7'
    assert lp.tag("line\none\rtwo") == "line\\ one\\ two"
    assert lp.tag("end\\\\") == "end"
    assert lp.tag("k=v, x") == "k\\=v\\,\\ x"
    assert lp.measurement("a=b") == "a=b"            # `=` needs no escape in a measurement


@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (3, "3.0"), (0, "0.0"), (-2.5, "-2.5"), (1e-7, "1e-07"),
    (float("inf"), '"inf"'), (float("nan"), '"nan"'), (float("-inf"), '"-inf"'),
    ("plain", '"plain"'),
])
def test_field_values(value, text):
    assert lp.field_value(value) == text


def test_influxql_text_cannot_escape_its_quotes():
    assert lp.string_literal("C:\\' OR 1=1") == "'C:\\\\\\' OR 1=1'"
    assert lp.identifier("a\\") == '"a\\\\"'


def test_only_trailing_backslashes_are_dropped_from_a_tag():
    assert lp.tag("BOX\\") == "BOX" and lp.tag("TAX") == "TAX"
