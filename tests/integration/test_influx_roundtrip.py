"""Property: whatever a valid reading carries comes back from a real InfluxDB unchanged.

Arbitrary sensor ids, metrics, node/zone text and quality text (a string
field) go through our line-protocol escaping into influxd 1.6.7 and are read
back, both directly and through the adapter's own InfluxQL query (so an id
can never change a query's meaning). Examples are bounded to keep it quick.
"""
from __future__ import annotations

import itertools
import threading
import time

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from app.adapters.influx import InfluxHistory
from app.adapters.spool import DiskSpool
from app.models import SENSOR_ID_PATTERN, SLUG_PATTERN, TAG_TEXT_PATTERN
from app.services.history import HistoryQuery
from testkit.helpers import wait_for
from testkit.readings import reading

ids = st.from_regex(SENSOR_ID_PATTERN, fullmatch=True)
slugs = st.from_regex(SLUG_PATTERN, fullmatch=True)
short_text = st.from_regex(TAG_TEXT_PATTERN, fullmatch=True).filter(lambda s: 1 <= len(s) <= 64)
# A string field may hold anything but NUL and lone surrogates (which JSON and UTF-8 cannot carry).
field_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                     min_size=1, max_size=80).filter(lambda s: s != "good")
readings = st.lists(st.fixed_dictionaries({
    "sensor_id": ids, "metric": slugs, "node_id": short_text | st.none(), "zone": short_text | st.none(),
    "value": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "quality": field_text | st.none()}), min_size=1, max_size=8,
    unique_by=lambda r: r["sensor_id"])
windows = itertools.count(1)


def test_arbitrary_ids_metrics_and_text_round_trip(influx, influx_db, tmp_path):
    db, env = influx_db
    history = InfluxHistory(env["INFLUXDB_URL"], "t", "bhs", db, DiskSpool(tmp_path / "spool", 1 << 24),
                            spawn=lambda fn: threading.Thread(target=fn, daemon=True).start(),
                            sleep=time.sleep, flush_interval_s=0.01)
    history.start()

    # No shrinking: against a real database it can take minutes; the example is printed as found.
    @settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batch=readings)
    def round_trip(batch):
        # Each example in its own hour-long window of 1990, so examples never meet.
        base = 631_152_000 + next(windows) * 3600
        # No quality text means a good reading (whose flag is not written).
        records = [reading(r["sensor_id"], r["value"], base + i, metric=r["metric"], node_id=r["node_id"],
                           zone=r["zone"], quality=r["quality"] or "good") for i, r in enumerate(batch)]
        written = history.writer.written
        history.write_readings(records)
        wait_for(lambda: history.writer.written, lambda n: n >= written + len(records), timeout=10, every=0.01)
        assert history.status()["rejected"] == {}
        rows = influx.query(db, f'SELECT * FROM "sensor_reading" WHERE time >= {base}s AND time < {base + 3600}s')
        by_id = {row["sensor_id"]: row for row in rows}
        assert len(rows) == len(records)
        for record in records:
            row = by_id[record.sensor_id]
            # InfluxDB's JSON writes a large float as an integer literal; same number.
            assert float(row["value"]) == record.value
            assert row["metric"] == record.metric
            # A column that no point of the window has is absent.
            assert row.get("node_id") == record.node_id and row.get("zone") == record.zone
            assert row.get("quality") == (None if record.quality == "good" else record.quality)
            points, _ = history.query(HistoryQuery(record.sensor_id, base, base + 3600, None, None))
            assert [p["v"] for p in points] == [record.value]

    try:
        round_trip()
    finally:
        history.stop()
