import pytest

from app.domain.clock import ManualClock
from app.errors import SensorLimitReached
from app.services.store import DataStore
from testkit.readings import reading


def record(sid, value, ts):
    return reading(sid, value, ts)


def test_latest_and_bounded_recent_ring():
    store = DataStore(max_sensors=10, recent_points=3, clock=lambda: 100.0)
    store.put_many([record("a", float(v), 90 + v) for v in range(5)])
    assert store.latest("a").value == 4.0
    assert [p["v"] for p in store.recent("a")] == [2.0, 3.0, 4.0]


def test_late_reading_never_hides_a_newer_one():
    store = DataStore(10, 5, clock=lambda: 100.0)
    store.put_many([record("a", 2.0, 50)])
    store.put_many([record("a", 1.0, 40)])
    assert store.latest("a").value == 2.0


def test_sensor_cap_refuses_new_ids_but_not_known_ones():
    store = DataStore(max_sensors=2, recent_points=5, clock=ManualClock())
    store.admit(["a", "b"])
    store.put_many([record("a", 1, 1), record("b", 1, 1)])
    store.admit(["a", "b"])  # known ids always pass
    with pytest.raises(SensorLimitReached):
        store.admit(["c"])


def test_stale_flag_uses_receive_time():
    now = [100.0]
    store = DataStore(10, 5, clock=lambda: now[0])
    store.put_many([record("a", 1, 1)])
    assert store.all_latest(lambda r: 60)[0].stale is False
    assert store.stale_count(lambda r: 60) == 0
    now[0] = 200.0
    assert store.all_latest(lambda r: 60)[0].stale is True
    assert store.stale_count(lambda r: 60) == 1


def test_decisions_newest_first_and_client_count():
    store = DataStore(10, 5, clock=ManualClock())
    store.add_decisions([{"id": 1}, {"id": 2}, {"id": 3}])
    assert [d["id"] for d in store.decisions(2)] == [3, 2]
    store.client_connected(); store.client_connected(); store.client_disconnected()
    assert store.clients == 1


def test_point_ring_keeps_the_newest_in_order():
    from app.services.ring import PointRing
    ring = PointRing(3)
    for k in range(5):
        ring.append(float(k), k * 10.0)
    assert ring.points() == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]
    assert ring.resized(2).points() == [(3.0, 30.0), (4.0, 40.0)]


def test_embedded_history_stays_within_its_budget():
    from app.adapters.memory_history import MemoryHistory
    history = MemoryHistory(points_per_sensor=100, budget_points=1000)
    for k in range(50):
        history.write_readings([reading(f"s{i}", float(k), float(k)) for i in range(40)])
    assert history.ring_size * 40 <= 1000
    total = sum(len(ring) for ring in history._points.values())
    assert total <= 1000
    assert [p[1] for p in history._points["s0"].points()][-1] == 49.0
