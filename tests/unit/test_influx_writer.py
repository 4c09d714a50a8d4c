"""The write-status policy of HeldWriter, against a scripted store (logic only).

The same policy runs against a real InfluxDB behind a fault proxy in
tests/integration/test_history_write_statuses.py; here each answer is
scripted so every branch (Retry-After, single oversized point, bisection,
restart) is exercised exactly.
"""
from __future__ import annotations

import json
import time

import pytest
from influxdb_client.rest import ApiException

from app.adapters.influx_status import backoff_s, classify, refusal, retry_after
from app.adapters.influx_writer import HeldWriter
from app.adapters.spool import DiskSpool


def answer(status: int, body: str = "", headers: dict | None = None) -> ApiException:
    error = ApiException(status=status, reason="scripted")
    error.body = body.encode()
    error.headers = headers or {}
    return error


class ScriptedStore:
    """Takes line-protocol bodies; `rule(lines)` returns an exception to raise, or None."""

    def __init__(self):
        self.points: list[str] = []
        self.bodies: list[bytes] = []
        self.rule = lambda lines: None

    def send(self, body: bytes) -> None:
        self.bodies.append(body)
        lines = body.decode().split("\n")
        error = self.rule(lines)
        if error is not None:
            raise error
        self.points += lines


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def writer_for(tmp_path, store, **options) -> HeldWriter:
    options = {"batch_lines": 100, "retry_base_s": 0.0, "retry_max_s": 0.0, "alert_after_s": 5.0,
               **options}
    return HeldWriter(store.send, DiskSpool(tmp_path / "spool", 1 << 24), spawn=lambda fn: None,
                      sleep=lambda s: None, **options)


def lines(prefix: str, n: int) -> list[str]:
    return [f"m,s={prefix} value={float(i)} {i + 1}" for i in range(n)]


@pytest.mark.parametrize("status", [401, 403, 404, 408, 429, 500, 502, 503])
def test_store_side_statuses_hold_the_batch_and_drain_in_order(tmp_path, status):
    store = ScriptedStore()
    store.rule = lambda ls: answer(status, '{"error":"nope"}')
    writer = writer_for(tmp_path, store)
    writer._running = True
    writer.add(lines("a", 150))
    writer.pump()
    assert store.points == [] and writer.spool.pending_points() == 150
    assert writer.state() == "degraded" and writer.detail()["last_error"]["status"] == status
    writer.add(lines("b", 30))
    writer.pump()                          # held behind the first, never ahead of it
    store.rule = lambda ls: None
    writer.pump()
    assert store.points == lines("a", 150) + lines("b", 30)
    assert writer.state() == "ok" and writer.spool.pending_points() == 0 and not writer.rejected


def test_network_errors_hold_and_say_down(tmp_path):
    store = ScriptedStore()
    store.rule = lambda ls: ConnectionRefusedError("refused")
    writer = writer_for(tmp_path, store)
    writer._running = True
    writer.add(lines("a", 10))
    writer.pump()
    assert writer.state() == "down" and writer.detail()["last_error"]["status"] is None
    assert writer.spool.pending_points() == 10


def test_retry_after_is_honoured_and_backoff_is_capped_with_jitter(tmp_path):
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"Retry-After": "100000"}) == 300.0
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert classify(answer(429, "", {"Retry-After": "3"})).retry_after_s == 3.0
    assert [backoff_s(n, 0.5, 30, rand=lambda: 0.0) for n in range(1, 9)] == \
        [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert backoff_s(20, 0.5, 30, rand=lambda: 1.0) == 30.0
    store = ScriptedStore()
    store.rule = lambda ls: answer(429, "", {"Retry-After": "3"})
    writer = writer_for(tmp_path, store, retry_base_s=0.01, retry_max_s=0.02)
    writer._running = True
    writer.add(lines("a", 5))
    writer.pump()
    assert 2.5 < writer.detail()["retry_in_s"] <= 3.0
    attempts = len(store.bodies)
    writer.pump()                           # not due yet: no new attempt
    assert len(store.bodies) == attempts


def test_413_halves_until_it_fits_and_rejects_a_single_oversized_point(tmp_path):
    store = ScriptedStore()
    huge = "m,s=x text=\"" + "y" * 500 + "\" 99"
    store.rule = lambda ls: answer(413, '{"error":"Request Entity Too Large"}') \
        if sum(map(len, ls)) > 400 else None
    writer = writer_for(tmp_path, store)
    writer._running = True
    batch = lines("a", 40)
    writer.add(batch[:20] + [huge] + batch[20:])
    writer.pump()
    assert store.points == batch                  # everything else, in order
    assert writer.rejected == {"too_large": 1} and writer.splits >= 3
    assert writer.state() == "ok" and writer.spool.pending_points() == 0


# Answers of a real influxd 1.6.7 (probed on this machine).
PARSE_ERRORS = ("partial write: unable to parse 'm,s=a value= 4': missing field value\n"
                "unable to parse 'm,s=a va lue=1 6': invalid field format dropped=0")
TYPE_CONFLICT = ('partial write: field type conflict: input field "value" on measurement "m" '
                 'is type string, already exists as type float dropped=1')


def test_partial_write_answers_are_read_as_influxdb_1x_writes_them():
    parse = refusal(PARSE_ERRORS)
    assert parse.partial and parse.reason == "unparseable" and parse.dropped == 0
    assert parse.bad_lines == {"m,s=a value= 4": "missing field value",
                               "m,s=a va lue=1 6": "invalid field format"}
    conflict = refusal(TYPE_CONFLICT)
    assert conflict.partial and conflict.dropped == 1 and conflict.reason == "field_type_conflict"
    assert refusal("partial write: points beyond retention policy dropped=3").reason == "beyond_retention"


def test_a_partial_write_counts_only_the_refused_points(tmp_path, caplog):
    store = ScriptedStore()

    def one_conflict(ls):
        bad = [line for line in ls if "text" in line]
        store.points += [line for line in ls if "text" not in line]   # InfluxDB keeps the rest
        message = TYPE_CONFLICT.replace("dropped=1", f"dropped={len(bad)}")
        return answer(400, json.dumps({"error": message})) if bad else None
    store.rule = one_conflict
    writer = writer_for(tmp_path, store)
    writer._running = True
    batch = lines("a", 10)
    writer.add(batch[:5] + ['m,s=a value="text" 50'] + batch[5:])
    writer.add(lines("b", 3) + ['m,s=b value="text" 60'])
    writer.pump()
    assert sorted(store.points) == sorted(batch + lines("b", 3))
    assert writer.rejected == {"field_type_conflict": 2} and writer.written == 13
    assert writer.state() == "ok" and writer.spool.pending_points() == 0
    logged = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(logged) == 1                        # once a minute, not per point


def test_an_unnamed_refusal_is_narrowed_down_by_halving(tmp_path):
    store = ScriptedStore()
    store.rule = lambda ls: answer(400, '{"error":"bad request"}') if any("BAD" in x for x in ls) else None
    writer = writer_for(tmp_path, store)
    writer._running = True
    batch = lines("a", 16)
    writer.add(batch[:9] + ["m,s=BAD value=1 5"] + batch[9:])
    writer.pump()
    assert store.points == batch and writer.rejected == {"invalid": 1}


def test_alert_after_failing_for_a_while_and_cleared_by_success(tmp_path):
    store, clock, events = ScriptedStore(), Clock(), []
    store.rule = lambda ls: answer(503, "down")
    writer = writer_for(tmp_path, store, clock=clock, alert_after_s=60,
                        on_failing=lambda d: events.append(("failing", d["spool"]["points"])),
                        on_recovered=lambda d: events.append(("recovered", d["spool"]["points"])))
    writer._running = True
    writer.add(lines("a", 4))
    writer.pump()
    clock.now += 59
    writer.pump()
    assert events == [] and writer.state() == "degraded"
    clock.now += 2
    writer.pump()
    assert events == [("failing", 4)] and writer.state() == "down"
    assert writer.detail()["failing_for_s"] == 61
    writer.pump()
    assert events == [("failing", 4)]               # raised once
    store.rule = lambda ls: None
    writer.pump()
    assert events == [("failing", 4), ("recovered", 0)] and writer.state() == "ok"


def test_held_batches_survive_a_restart_and_report_their_age(tmp_path):
    store = ScriptedStore()
    store.rule = lambda ls: answer(404, '{"error":"database not found"}')
    first = writer_for(tmp_path, store)
    first._running = True
    first.add(lines("a", 20))
    first.pump()
    first.add(lines("b", 5))
    first.stop()                                     # buffered lines go behind the held ones
    time.sleep(0.05)
    store.rule = lambda ls: None
    second = writer_for(tmp_path, store)
    detail = second.detail()
    assert detail["state"] == "degraded" and detail["spool"]["points"] == 25
    assert detail["spool"]["oldest_held_age_s"] >= 0.05
    second._running = True
    second.pump()
    assert store.points == lines("a", 20) + lines("b", 5) and second.state() == "ok"
