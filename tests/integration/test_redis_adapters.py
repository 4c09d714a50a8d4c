"""The Redis adapters against a real redis-server: the stream, the lease, the roster."""
from __future__ import annotations

import time

import pytest

from app.adapters.redis_client import blocking_client, command_client
from app.adapters.redis_lease import RedisLease, RedisRoster
from app.adapters.redis_stream import RedisBatchLog
from app.domain.records import Reading
from app.services.cluster.ports import LogUnavailable
from testkit.readings import reading


def _log(url: str, maxlen: int = 1000) -> RedisBatchLog:
    return RedisBatchLog(command_client(url), blocking_client(url, 1.0), "t:readings", maxlen,
                         encode=Reading.to_dict, decode=Reading.from_dict)


def test_batches_come_back_in_order_with_their_origin_and_exact_timestamps(redis_server):
    log = _log(redis_server.url)
    records = [reading("s1", 1.5, 1700000000.123457, metric="flow", quality="suspect", quality_reason="jump")]
    first = log.append("a.1", records)
    log.append("b.1", [reading("s2", 2.0, 1700000001.0)])
    entries = log.read_after("0", 10, 0.1)
    assert [e.origin for e in entries] == ["a.1", "b.1"]
    assert entries[0].id == first and entries[0].records == records
    assert all(isinstance(r, Reading) for e in entries for r in e.records)
    assert log.read_after(entries[-1].id, 10, 0.2) == []      # blocks, then nothing new
    assert [e.origin for e in log.range(entries[1].id, 10)] == ["b.1"]
    info = log.info()
    assert info["length"] == 2 and info["last_id"] == entries[-1].id and not info["trimmed"]


def test_the_stream_carries_the_json_every_version_reads(redis_server):
    """Instances of two versions share one stream: the batch JSON stays what it always was."""
    log = _log(redis_server.url)
    log.append("new.1", [reading("s1", 1.5, 1700000000.5, metric="flow", node_id="N", quality="suspect",
                                 quality_reason="jump")])
    [(_, fields)] = log.client.xrange("t:readings", count=1)
    assert fields[b"r"] == (
        b'[{"sensor_id":"s1","value":1.5,"metric":"flow","unit":null,"node_id":"N","zone":null,'
        b'"timestamp":"2023-11-14T22:13:20.500000Z","ts":1700000000.5,"latency_ms":null,"source":"sensor",'
        b'"quality":"suspect","quality_reason":"jump"}]')
    # An older instance's batch (a good reading: no reason) reads as the same record.
    log.client.xadd("t:readings", {"o": "old.1", "r": (
        '[{"sensor_id":"s2","value":2,"metric":"ph","unit":"pH","node_id":null,"zone":"South",'
        '"timestamp":"2023-11-14T22:13:21Z","ts":1700000001.0,"latency_ms":12.5,"source":"api:kspcb",'
        '"quality":"good"}]')})
    old = log.read_after("0", 10, 0.1)[-1]
    assert old.origin == "old.1" and old.records == [
        Reading(sensor_id="s2", value=2, metric="ph", unit="pH", node_id=None, zone="South",
                timestamp="2023-11-14T22:13:21Z", ts=1700000001.0, latency_ms=12.5, source="api:kspcb")]


def test_maxlen_bounds_the_stream_and_info_says_it_was_trimmed(redis_server):
    log = _log(redis_server.url, maxlen=10)
    for i in range(500):
        log.append("a.1", [reading("s", float(i), float(i))])
    info = log.info()
    assert info["length"] < 500 and info["trimmed"]
    assert log.range("-", 1)[0].records[0].value > 0


def test_a_stopped_redis_is_reported_and_a_restarted_one_keeps_the_stream(redis_server):
    log = _log(redis_server.url)
    last = log.append("a.1", [reading("s", 1.0, 1.0)])
    redis_server.stop()
    with pytest.raises(LogUnavailable):
        log.append("a.1", [])
    with pytest.raises(LogUnavailable):
        log.read_after(last, 10, 0.1)
    redis_server.start()
    entries = log.read_after("0", 10, 0.1)
    assert [e.id for e in entries] == [last]


def test_the_lease_has_one_holder_until_it_expires_or_is_released(redis_server):
    a = RedisLease(command_client(redis_server.url), "t:leader")
    b = RedisLease(command_client(redis_server.url), "t:leader")
    assert a.acquire("a.1", 0.6)
    assert not b.acquire("b.1", 0.6)
    assert a.renew("a.1", 0.6) and not b.renew("b.1", 0.6)
    assert b.holder() == "a.1"
    time.sleep(0.8)                         # a stopped renewing
    assert b.holder() is None and b.acquire("b.1", 0.6)
    assert not a.renew("a.1", 0.6)          # the old holder finds out
    b.release("b.1")
    assert a.holder() is None


def test_the_roster_shows_who_is_alive(redis_server):
    roster = RedisRoster(command_client(redis_server.url), "t")
    roster.beat("a.1", {"instance_id": "a"}, 0.3)
    roster.beat("b.1", {"instance_id": "b"}, 30)
    members = roster.members()
    assert members["a.1"]["alive"] and members["b.1"]["instance_id"] == "b"
    time.sleep(0.5)
    assert not roster.members()["a.1"]["alive"] and roster.members()["b.1"]["alive"]
    roster.forget("a.1")
    assert set(roster.members()) == {"b.1"}
