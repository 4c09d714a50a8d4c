"""GET /api/history/export in process, on the embedded history: columns, paging, errors."""
from __future__ import annotations

import csv
import io
import json
import time

import pytest

from app import create_app
from app.config import Settings
from app.services import history_export
from testkit.helpers import stamp


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setattr(history_export, "PAGE_POINTS", 50)     # many pages from a few points
    app = create_app(Settings(instance_dir=tmp_path, simulator="off", operator_tokens="ops=t"))
    return app.test_client()


def test_csv_and_ndjson_with_the_documented_columns(client):
    now = time.time()
    readings = [{"sensor_id": sid, "metric": "ph", "unit": "pH", "value": 7 + k / 100,
                 "timestamp": stamp(now - 600 + k)} for k in range(300) for sid in ("e-1", "e-2")]
    assert client.post("/api/sensors", json=readings).status_code == 202
    reply = client.get("/api/history/export?sensor_id=e-1&sensor_id=e-2&start=-1h&format=csv")
    assert reply.status_code == 200 and reply.is_streamed
    assert reply.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(reply.get_data(as_text=True))))
    assert list(rows[0]) == ["time", "sensor_id", "metric", "unit", "value", "quality"]
    assert [r["sensor_id"] for r in rows] == ["e-1"] * 300 + ["e-2"] * 300        # 12 pages, in order
    assert [float(r["value"]) for r in rows[:300]] == [7 + k / 100 for k in range(300)]
    assert rows[0]["time"] == readings[0]["timestamp"] and rows[0]["unit"] == "pH" and rows[0]["metric"] == "ph"

    rolled = client.get("/api/history/export?sensor_id=e-1&start=-1h&format=ndjson&resolution=1m")
    assert rolled.mimetype == "application/x-ndjson"
    records = [json.loads(line) for line in rolled.get_data(as_text=True).splitlines()]
    assert sum(r["count"] for r in records) == 300
    assert list(records[0]) == ["time", "sensor_id", "metric", "unit", "mean", "min", "max", "count", "quality"]
    assert all(r["min"] <= r["mean"] <= r["max"] for r in records)


@pytest.mark.parametrize("query, field", [("", "sensor_id"), ("sensor_id=a&format=xml", "format"),
                                          ("sensor_id=a&start=yesterday", "start"),
                                          ("sensor_id=a&start=-1h&stop=-2h", "stop"),
                                          ("sensor_id=a&resolution=5m", "resolution")])
def test_bad_requests_say_which_field(client, query, field):
    reply = client.get("/api/history/export?" + query)
    assert reply.status_code == 422 and reply.json["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("query, field", [
    ("sensor_id=a&start=-99999999999999999w", "start"),                 # before year 1: no ISO time
    ("sensor_id=a&start=-" + "9" * 5000 + "ms", "start"),               # more digits than an int
    ("sensor_id=a&start=0001-01-01T00:00:00%2B14:00", "start"),
    ("sensor_id=a&stop=9999-12-31T23:59:59%2B00:00", "stop"),
    ("sensor_id=a&start=-1000d&resolution=1m", "start"),                # 1.4 M one-minute buckets
    ("sensor_id=a&start=0002-01-01&stop=9999-12-01", "start"),         # 2.9 M days
])
def test_ranges_no_stream_could_answer_are_refused_before_streaming(client, query, field):
    started = time.monotonic()
    reply = client.get("/api/history/export?" + query)
    assert reply.status_code == 422 and reply.json["error"]["details"][0]["field"] == field
    assert time.monotonic() - started < 2


def test_a_long_but_bounded_range_streams_quickly(client):
    started = time.monotonic()
    reply = client.get("/api/history/export?sensor_id=a&start=0002-01-01&stop=9999-12-01&resolution=raw")
    assert reply.status_code == 200 and reply.get_data(as_text=True).startswith("time,")
    reply = client.get("/api/history/export?sensor_id=a&start=-600d&resolution=1m&format=ndjson")
    assert reply.status_code == 200 and reply.get_data(as_text=True) == ""
    assert time.monotonic() - started < 10


def test_an_id_outside_the_reading_charset_still_gets_a_latin1_file_name(client):
    """The fuzzer's `sensor_id=Ā` made eventlet drop the connection: the id went into
    Content-Disposition, which must be Latin-1 on the wire."""
    reply = client.get("/api/history/export?sensor_id=%C4%80%22x&start=-1h&format=csv")
    assert reply.status_code == 200
    disposition = reply.headers["Content-Disposition"]
    disposition.encode("latin-1")
    assert disposition == 'attachment; filename="history-__x-raw.csv"'
