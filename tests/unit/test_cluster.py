"""Cluster logic against the in-memory ports: replication order, the outbox, the lease."""
from __future__ import annotations

import threading

from app.adapters.spool import DiskSpool
from app.domain.records import Reading
from app.services.cluster.leadership import ACQUIRE_POLL_S, Leadership
from app.services.cluster.node import ClusterNode
from app.services.cluster.ports import MemoryLease, MemoryLog, MemoryRoster
from app.services.cluster.replication import Outbox, Replicator
from testkit.readings import reading


def _no_spawn(fn):
    return None


def _outbox(folder):
    """A readings' outbox, as the cluster builds it (app/adapters/redis_cluster.py)."""
    return Outbox(DiskSpool(folder, 10_000_000), encode=Reading.to_dict, decode=Reading.from_dict)


def _replicator(log, tmp_path, name, applied):
    outbox = _outbox(tmp_path / f"outbox-{name}")
    return Replicator(log, outbox, name, lambda records, origin: applied.append((origin, records)),
                      _no_spawn, lambda s: None)


def _batch(n, value=1.0):
    return [reading(f"s{i}", value, 1000.0 + i) for i in range(n)]


def test_each_instance_applies_the_others_batches_in_order_and_skips_its_own(tmp_path):
    log = MemoryLog()
    seen_a, seen_b = [], []
    a = _replicator(log, tmp_path, "a", seen_a)
    b = _replicator(log, tmp_path, "b", seen_b)
    a.publish(_batch(1, 1.0))
    b.publish(_batch(1, 2.0))
    a.publish(_batch(1, 3.0))
    for replica in (a, b):
        replica._apply(log.read_after(replica.last_id, 100, 0))
    assert [records[0].value for _, records in seen_b] == [1.0, 3.0]
    assert [records[0].value for _, records in seen_a] == [2.0]
    assert a.last_id == b.last_id == log.entries[-1].id


def test_an_outage_spools_in_order_and_the_log_gets_everything_once_back(tmp_path):
    log = MemoryLog()
    a = _replicator(log, tmp_path, "a", [])
    a.publish(_batch(1, 1.0))
    log.down = True
    a.publish(_batch(1, 2.0))
    a.publish(_batch(1, 3.0))
    assert len(log.entries) == 1 and a.outbox.pending() == 2 and not a.log_up
    log.down = False
    a.publish(_batch(1, 4.0))         # still behind the outbox: order is kept
    assert len(log.entries) == 1
    a._running = True
    flusher = threading.Thread(target=a._flush_outbox, daemon=True)
    flusher.start()
    while a._spooling:
        pass
    a._running = False
    a._wake.set()
    flusher.join(5)
    assert [e.records[0].value for e in log.entries] == [1.0, 2.0, 3.0, 4.0]
    assert a.outbox.pending() == 0


def test_leftovers_of_a_killed_run_go_to_the_log_under_their_old_name(tmp_path):
    _outbox(tmp_path / "outbox").put("a.old", _batch(2))
    log = MemoryLog()
    restarted = Replicator(log, _outbox(tmp_path / "outbox"), "a.new",
                           lambda r, o: None, _no_spawn, lambda s: None)
    assert restarted._spooling
    restarted.publish(_batch(1))
    assert log.entries == []   # behind the leftovers
    path, origin, records = restarted.outbox.oldest()
    assert origin == "a.old" and len(records) == 2


def test_rebuild_applies_the_whole_log_including_earlier_runs_of_the_same_instance(tmp_path):
    log = MemoryLog()
    for origin in ("a.1", "b.1", "a.1"):
        log.append(origin, _batch(3))
    applied = []
    restarted = _replicator(log, tmp_path, "a.2", applied)
    assert restarted.rebuild() == 3
    assert restarted.last_id == log.entries[-1].id


def test_rewrite_picks_only_the_dead_members_batches_since_the_window(tmp_path):
    now = [1000.0]
    log = MemoryLog(clock=lambda: now[0])
    log.append("dead", _batch(2))
    now[0] = 1100.0
    log.append("dead", _batch(3))
    log.append("alive", _batch(4))
    written = []
    r = _replicator(log, tmp_path, "x", [])
    assert r.rewrite("dead", 1050 * 1000, written.extend) == 3
    assert len(written) == 3


def test_a_follower_takes_over_within_the_lease_and_the_old_leader_has_stopped_first():
    now = [0.0]
    lease = MemoryLease(clock=lambda: now[0])
    changes = []
    a = Leadership(lease, "a", 10, _no_spawn, lambda s: None, lambda l: changes.append(("a", l)),
                   clock=lambda: now[0])
    b = Leadership(lease, "b", 10, _no_spawn, lambda s: None, lambda l: changes.append(("b", l)),
                   clock=lambda: now[0])
    a.step()
    b.step()
    assert a.is_leader and not b.is_leader
    now[0] = 3.0
    a.step()                           # renewed at t=3; then a dies
    died = now[0]
    while not b.is_leader:
        assert not (a.is_leader and b.is_leader)
        now[0] += ACQUIRE_POLL_S
        b.step()
    assert now[0] - died <= 10
    assert not a.is_leader             # its own clock says the lease ran out
    assert changes == [("a", True), ("b", True)]


def test_a_leader_that_cannot_renew_steps_down_when_its_lease_runs_out():
    now = [0.0]
    lease = MemoryLease(clock=lambda: now[0])
    a = Leadership(lease, "a", 10, _no_spawn, lambda s: None, clock=lambda: now[0])
    a.step()
    lease.renew = lambda holder, ttl: False     # Redis away
    now[0] = 5.0
    a.step()
    assert a.is_leader
    now[0] = 9.6
    a.step()
    assert not a.is_leader and not a._leading


def test_ready_waits_for_the_rebuild_and_every_check(tmp_path):
    log = MemoryLog()
    log.append("b.1", _batch(2))
    applied = []
    replicator = _replicator(log, tmp_path, "a.1", applied)
    leadership = Leadership(MemoryLease(), "a.1", 10, _no_spawn, lambda s: None)
    node = ClusterNode("a", "a.1", replicator, leadership, MemoryRoster(), lambda r: None,
                       _no_spawn, lambda s: None)
    drained = [False]
    node.add_check("MQTT session drained", lambda: drained[0])
    assert not node.ready and len(node.waiting_for()) == 2
    node._running = True
    node._boot()
    assert len(applied) == 1 and node.rebuilt and not node.ready
    assert node.waiting_for() == ["MQTT session drained"]
    drained[0] = True
    assert node.ready


def test_the_leader_rewrites_a_dead_members_history_once(tmp_path):
    now = [2000.0]
    log = MemoryLog(clock=lambda: now[0])
    log.append("b.1", _batch(5))
    roster = MemoryRoster(clock=lambda: now[0])
    roster.beat("b.1", {"instance_id": "b"}, 5)
    replicator = _replicator(log, tmp_path, "a.1", [])
    leadership = Leadership(MemoryLease(), "a.1", 10, _no_spawn, lambda s: None)
    leadership.step()
    written = []
    node = ClusterNode("a", "a.1", replicator, leadership, roster, written.extend,
                       _no_spawn, lambda s: None)
    now[0] += 6       # b stopped beating
    node._members = roster.members()
    node._pick_up_after_dead()
    assert len(written) == 5 and "b.1" not in roster.members()
    node._members = roster.members()
    node._pick_up_after_dead()
    assert len(written) == 5


def test_shared_state_adopts_other_instances_changes_without_echoing_them(tmp_path):
    from prometheus_client import CollectorRegistry

    from app import wire
    from app.bus import MessageBus
    from app.domain.events import AlertCleared, AlertRaised, AlertUpdated
    from app.domain.clock import ManualClock
    from app.services.alerts import AlertBook
    from app.services.cluster.shared_state import SharedState

    log = MemoryLog()
    books, states = {}, {}
    for name in ("a", "b"):
        bus = MessageBus(CollectorRegistry())
        book = AlertBook(bus.publish, clock=ManualClock())
        state = SharedState({"alert": book.adopt})
        state.replicator = Replicator(log, Outbox(DiskSpool(tmp_path / f"state-{name}", 10_000_000)),
                                      name, state.apply, _no_spawn, lambda s: None)
        for transition in (AlertRaised, AlertUpdated, AlertCleared):   # as app/handlers.py shares them
            bus.subscribe(transition, lambda event, state=state: state.share("alert", wire.alert(event.alert)))
        books[name], states[name] = book, state

    def sync():
        for state in states.values():
            state.replicator._apply(log.read_after(state.replicator.last_id, 100, 0))

    raised = books["a"].raise_("s1", "quality_high", "critical", "chlorine high")
    sync()
    assert books["b"].listing(include_cleared=False)[0].id == raised.id
    books["b"].acknowledge(raised.id, "ops")          # on the other instance
    sync()
    assert books["a"].get(raised.id).acknowledged_by == "ops"
    books["a"].clear("s1", "quality_high")                # acked and cleared: archived
    sync()
    assert books["b"].listing(include_cleared=False) == []
    assert books["b"].listing(include_cleared=True)[0].alarm_state == "cleared_acknowledged"
    assert len(log.entries) == 3                          # adopting never sent anything back


def test_a_trimmed_stream_is_filled_in_from_history(tmp_path):
    from app.adapters.memory_history import MemoryHistory
    from app.services.cluster.backfill import latest_from_history

    history = MemoryHistory()
    history.write_readings([reading("old", v, 1000.0 + v, metric="flow", node_id="n1") for v in (1.0, 2.0)])
    found = latest_from_history(history, ["old", "never"], lambda sid: {"node_id": "n1"}, 2000.0)
    assert [(r.sensor_id, r.value, r.ts, r.node_id) for r in found] == [("old", 2.0, 1002.0, "n1")]

    log = MemoryLog(maxlen=1)
    log.append("b.1", _batch(1))
    log.append("b.1", _batch(1))
    filled = []
    node = ClusterNode("a", "a.1", _replicator(log, tmp_path, "a.1", []),
                       Leadership(MemoryLease(), "a.1", 10, _no_spawn, lambda s: None), MemoryRoster(),
                       lambda r: None, _no_spawn, lambda s: None,
                       fill_from_history=lambda: filled.append(1) or 1)
    node._running = True
    node._boot()
    assert filled == [1] and node.rebuilt


def test_without_redis_url_nothing_of_the_cluster_is_built_and_ready_is_200(tmp_path):
    from app import create_app
    from app.config import Settings

    app = create_app(Settings(instance_dir=tmp_path, simulator="off", operator_tokens="ops=t"))
    client = app.test_client()
    assert client.get("/api/ready").status_code == 200
    health = client.get("/api/health").get_json()
    assert "cluster" not in health and "redis" not in health["services"]
    assert app.extensions["bhs"].cluster is None


def test_with_redis_url_ready_is_503_until_the_live_state_is_rebuilt(tmp_path):
    from app import create_app
    from app.config import Settings

    # Nothing listens on port 1: the instance serves, and says what it waits for.
    app = create_app(Settings(instance_dir=tmp_path, simulator="off", operator_tokens="ops=t",
                              redis_url="redis://127.0.0.1:1/0"))
    reply = app.test_client().get("/api/ready")
    assert reply.status_code == 503
    assert reply.get_json()["waiting_for"] == ["live state rebuild from the shared log"]
