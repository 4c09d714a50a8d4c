"""The broadcaster's coalescing and deadband logic, against a recording fake."""
import threading
import time

from app.realtime.broadcaster import ALL_ROOM, Broadcaster, node_room
from testkit.readings import reading


class FakeSocketIO:
    def __init__(self):
        self.emitted = []

    def emit(self, event, data, namespace=None, to=None):
        self.emitted.append((event, to, [r["sensor_id"] for r in data["readings"]]))

    def start_background_task(self, target):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds):
        time.sleep(seconds)


def wait_until(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def rec(sid, value, node=None):
    return reading(sid, value, node_id=node)


def test_many_publishes_become_few_frames_with_latest_values():
    sio = FakeSocketIO()
    caster = Broadcaster(sio, "/live", 0.1, 0.5, deadband=lambda s: 0.0)
    caster.start()
    try:
        for i in range(200):
            caster.publish([rec(f"s{i % 20}", float(i))])
        wait_until(lambda: {s for _, _, ids in sio.emitted for s in ids} == {f"s{i}" for i in range(20)})
        assert len(sio.emitted) <= 3
    finally:
        caster.stop()


def test_changes_inside_deadband_go_out_as_minor_updates():
    sio = FakeSocketIO()
    caster = Broadcaster(sio, "/live", 0.01, 0.05, deadband=lambda s: 1.0)
    caster.start()
    try:
        caster.publish([rec("p", 10.0)])
        wait_until(lambda: sio.emitted)
        caster.publish([rec("p", 10.5)])        # inside the deadband
        wait_until(lambda: any(e == "minor_update" for e, _, _ in sio.emitted))
        caster.publish([rec("p", 12.0)])        # beyond it
        wait_until(lambda: sum(e == "sensor_update" for e, _, _ in sio.emitted) == 2)
    finally:
        caster.stop()


def test_subscribed_nodes_get_their_own_frames():
    sio = FakeSocketIO()
    caster = Broadcaster(sio, "/live", 0.01, 1, deadband=lambda s: 0.0)
    caster.subscribed("Z1", +1)
    caster.start()
    try:
        caster.publish([rec("a", 1, "Z1"), rec("b", 1, "Z2")])
        wait_until(lambda: len(sio.emitted) == 2)
        assert ("sensor_update", ALL_ROOM, ["a", "b"]) in sio.emitted
        assert ("sensor_update", node_room("Z1"), ["a"]) in sio.emitted
    finally:
        caster.stop()


def test_leading_edge_sends_a_lone_change_at_once_and_a_plain_tick_holds_it():
    # A long interval, so "at once" and "held" are seconds apart, not a timing race.
    eager, plain = FakeSocketIO(), FakeSocketIO()
    casters = [Broadcaster(eager, "/live", 5.0, 10, deadband=lambda s: 0.0),
               Broadcaster(plain, "/live", 5.0, 10, deadband=lambda s: 0.0, leading_edge=False)]
    for caster in casters:
        caster.start()
    try:
        for caster in casters:
            caster.publish([rec("x", 1.0)])
        wait_until(lambda: eager.emitted)
        time.sleep(0.3)
        assert eager.emitted == [("sensor_update", ALL_ROOM, ["x"])]
        assert plain.emitted == []
        # Within the interval after a frame, the next change waits for the trailing edge.
        casters[0].publish([rec("x", 2.0)])
        time.sleep(0.3)
        assert len(eager.emitted) == 1
    finally:
        for caster in casters:
            caster.stop()


def test_tick_lateness_is_reported_per_frame():
    sio = FakeSocketIO()
    caster = Broadcaster(sio, "/live", 0.02, 1, deadband=lambda s: 0.0)
    assert caster.tick_lateness_ms() == {"p50": None, "p99": None, "max": None}
    caster.start()
    try:
        for i in range(5):
            caster.publish([rec("x", float(i))])
            time.sleep(0.01)
        wait_until(lambda: len(sio.emitted) >= 2)
    finally:
        caster.stop()
    late = caster.tick_lateness_ms()
    assert 0 <= late["p50"] <= late["p99"] <= late["max"]
