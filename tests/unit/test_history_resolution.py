"""Resolution choice, retention parsing, the embedded rollups and stitching at the raw edge."""
from __future__ import annotations

import pytest

from app.adapters.influx_schema import backfill_statements, continuous_query, go_duration_s, influxql_duration
from app.adapters.memory_history import MemoryHistory
from app.errors import InvalidInput
from app.services.history import HistoryQuery, parse_retention, pick_resolution, read_history
from testkit.readings import reading

H, D = 3600, 86400


@pytest.mark.parametrize("span, expected", [(6 * H, "raw"), (6 * H + 1, "1m"), (7 * D, "1m"),
                                            (7 * D + 1, "1h"), (180 * D, "1h"), (181 * D, "1d")])
def test_resolution_follows_the_range(span, expected):
    assert pick_resolution(0, span) == expected


def test_resolution_override_and_bad_values():
    assert pick_resolution(0, 400 * D, "raw") == "raw"
    with pytest.raises(InvalidInput):
        pick_resolution(0, 10, "5m")


def test_retention_as_influxdb_writes_it():
    assert parse_retention("90d") == 90 * D and parse_retention("104w") == 104 * 7 * D
    assert parse_retention("0") is None
    assert influxql_duration(90 * D) == "90d" and influxql_duration(104 * 7 * D) == "104w"
    assert influxql_duration(None) == "INF"
    assert go_duration_s("2160h0m0s") == 90 * D and go_duration_s("0s") is None


def test_rollup_statements_keep_every_aggregate_and_escape_names():
    cq = continuous_query("water", "autogen", "1h")
    assert cq.startswith('CREATE CONTINUOUS QUERY "bhs_rollup_1h" ON "water" RESAMPLE EVERY 10m FOR 2h')
    assert 'INTO "water"."bhs_1h"."sensor_reading"' in cq and "GROUP BY time(1h), *" in cq
    for fn in ("mean", "min", "max", "count", "last"):
        assert f'{fn}("value") AS "{fn}"' in cq
    day, = backfill_statements("water", "autogen", "x' OR '1'='1", 90_000, 90_001, ["1d"])
    assert "\"sensor_id\" = 'x\\' OR \\'1\\'=\\'1'" in day
    assert f"time >= {86400 * 10**9} AND time < {2 * 86400 * 10**9}" in day


def record(ts, value, sid="m-1"):
    return reading(sid, value, ts)


def test_embedded_rollups_take_late_points_and_report_bands():
    history = MemoryHistory()
    history.write_readings([record(10 * H + 60 * k, float(k)) for k in range(120)])   # two hours
    history.write_readings([record(10 * H + 30, 100.0)])                              # late spike
    points, capped = history.query(HistoryQuery("m-1", 10 * H, 12 * H, None, None, resolution="1h"))
    assert not capped and [p["count"] for p in points] == [61, 60]
    assert points[0]["max"] == 100.0 and points[0]["min"] == 0.0
    assert points[0]["v"] == pytest.approx((sum(range(60)) + 100) / 61)
    assert points[1]["v"] == pytest.approx(sum(range(60, 120)) / 60)


def test_raw_older_than_the_ring_is_stitched_from_the_minute_rollup():
    history = MemoryHistory(points_per_sensor=60)
    history.write_readings([record(1000 * 60 + 10 * k, float(k)) for k in range(180)])   # 30 minutes
    query = HistoryQuery("m-1", 1000 * 60, 1030 * 60, None, None, resolution="raw")
    answer = read_history(history, query, now=1031 * 60)
    older, newer = answer["segments"]
    assert older["resolution"] == "1m" and newer["resolution"] == "raw"
    rolled = [p for p in answer["points"] if "count" in p]
    raw = [p for p in answer["points"] if "count" not in p]
    assert len(raw) == 60 and sum(p["count"] for p in rolled) == 120
    assert [p["t"] for p in answer["points"]] == sorted(p["t"] for p in answer["points"])


def test_buckets_of_a_rollup_width_come_from_the_rollup():
    from app.services.history import build_query
    hourly = build_query("s", {"start": "-30d", "every": "1h", "fn": "max"}, now=100 * D)
    assert hourly.resolution == "1h" and hourly.every is None and hourly.fn == "max"
    odd = build_query("s", {"start": "-1d", "every": "15m", "fn": "mean"}, now=100 * D)
    assert odd.resolution == "raw" and odd.every == 900
    assert build_query("s", {"start": "-30d"}, now=100 * D).resolution == "1h"


def test_which_influxdb_is_detected_from_its_version_header():
    from app.adapters.influx_schema import schema_kind
    assert schema_kind("1.6.7~rc0") == "1.x" and schema_kind("1.8.10") == "1.x"
    assert schema_kind("v2.7.4") == "2.x" and schema_kind("2.7.11") == "2.x"
    assert schema_kind("unknown") == "1.x"


def test_the_2x_task_rolls_up_every_aggregate_into_its_bucket():
    from app.adapters.influx_schema import flux_task
    flux = flux_task("water", "bhs", "1h")
    assert flux.startswith('option task = {name: "bhs_rollup_1h", every: 10m}')
    assert 'from(bucket: "water") |> range(start: -2h)' in flux
    for fn in ("mean", "min", "max", "count", "last"):
        assert f'aggregateWindow(every: 1h, fn: {fn}, createEmpty: false) |> set(key: "_field", value: "{fn}")' in flux
    assert flux.rstrip().endswith('|> to(bucket: "water_1h", org: "bhs")')
