"""The rollup back-fill of late points: noted whole, retried whole, and said to be pending."""
from __future__ import annotations

import time

from app.adapters import influx
from app.adapters.influx import InfluxHistory
from testkit.readings import reading


class Schema:
    def __init__(self, fail_on=()):
        self.fail_on, self.done = set(fail_on), []

    def backfill(self, sensor_id, start, stop):
        if sensor_id in self.fail_on:
            self.fail_on.discard(sensor_id)
            raise RuntimeError("timed out")
        self.done.append((sensor_id, start, stop))


def history(monkeypatch):
    monkeypatch.setattr(influx, "BACKFILL_INTERVAL_S", 0.0)
    store = InfluxHistory.__new__(InfluxHistory)       # no client, no writer: just the back-fill
    store._late, store._last_backfill, store.backfilled = {}, 0.0, 0
    store._late_lock, store._backfilling = influx.threading.Lock(), False
    return store


def test_a_failed_backfill_keeps_its_sensor_and_the_ones_after_it_pending(monkeypatch):
    store = history(monkeypatch)
    old = time.time() - 3 * 86400
    store._note_late([reading(s, 1.0, old + k) for s in ("a", "b", "c") for k in (0, 60)])
    store._note_late([reading("a", 1.0, time.time())])          # live: not late
    assert store.backfill_pending()
    store.schema = Schema(fail_on={"b"})
    store._backfill_late()
    assert store.schema.done == [("a", old, old + 60)] and store.backfill_pending()
    store._backfill_late()
    assert [s for s, *_ in store.schema.done] == ["a", "b", "c"] and not store.backfill_pending()
    assert store.backfilled == 3
