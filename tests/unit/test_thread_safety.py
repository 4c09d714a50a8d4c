"""Shared state hammered from real OS threads, as ASYNC_MODE=threading runs it.

Under eventlet and gevent a greenthread switches only at I/O, so unlocked
read-modify-writes never interleave; under real threads they do. Each test
shrinks the interpreter's switch interval so that a missing lock shows up as
lost counts or readings within a second, not once a week in production.
"""
from __future__ import annotations

import sys
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from app.adapters.memory_history import MemoryHistory
from app.bus import MessageBus
from app.domain.clock import SystemClock
from app.domain.events import ReadingsAccepted
from app.errors import SensorLimitReached
from app.realtime.broadcaster import Broadcaster
from app.services.data_quality import DataQuality
from app.services.metrics import Metrics
from app.services.pipeline import IngestPipeline
from app.services.store import DataStore
from testkit.readings import reading

THREADS = 8


@pytest.fixture(autouse=True)
def frequent_switches():
    """Switch threads every microsecond instead of every 5 ms."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def hammer(work, threads: int = THREADS) -> None:
    """Run work(i) on `threads` threads released at the same moment."""
    gate = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(i):
        gate.wait()
        try:
            work(i)
        except BaseException as error:   # surfaced below, not lost in a thread
            errors.append(error)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors[0]


class RecordingSocketIO:
    """Records frames; emits like python-socketio, from the tick's own thread."""

    def __init__(self):
        self.readings: dict[str, float] = {}
        self.frames = 0
        self.lock = threading.Lock()

    def emit(self, event, data, namespace=None, to=None):
        with self.lock:
            self.frames += 1
            for r in data["readings"]:
                self.readings[r["sensor_id"]] = r["value"]

    def start_background_task(self, target):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds):
        time.sleep(seconds)


def test_broadcaster_loses_no_reading_published_while_a_frame_is_taken():
    sio = RecordingSocketIO()
    caster = Broadcaster(sio, "/live", interval_s=0.0005, minor_interval_s=1, deadband=lambda s: 0.0)
    caster.start()
    rounds, sensors = 40, 250

    def publish(t):   # every sensor id once: any reading written into a taken buffer is lost
        for k in range(rounds):
            caster.publish([reading(f"t{t}-{k}-{i}", 1.0) for i in range(sensors)])

    expected = THREADS * rounds * sensors
    try:
        hammer(publish)
        deadline = time.monotonic() + 10
        while len(sio.readings) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        caster.stop()
    assert len(sio.readings) == expected, f"{expected - len(sio.readings)} readings never went out"
    assert sio.frames > 1   # frames really were taken while publishing went on


def test_broadcaster_subscription_counts_survive_concurrent_joins_and_leaves():
    caster = Broadcaster(RecordingSocketIO(), "/live", 0.05, 1, deadband=lambda s: 0.0)

    def churn(t):
        for _ in range(2000):
            caster.subscribed("Z1", +1)
        for _ in range(1000):
            caster.subscribed("Z1", -1)

    hammer(churn)
    assert caster._subscribed["Z1"] == THREADS * 1000


def test_metrics_count_every_add_when_threads_create_the_counter_together():
    for _ in range(20):     # the race is at creation: repeat it with fresh registries
        metrics = Metrics()
        hammer(lambda t: [metrics.accepted(f"src{t % 2}") for _ in range(200)])
        assert metrics.total("ingested", "src0") + metrics.total("ingested", "src1") == THREADS * 200


def test_sensor_cap_holds_against_concurrent_new_sensors():
    for _ in range(30):     # the race is at the cap: cross it many times
        store = DataStore(max_sensors=16, recent_points=5, clock=SystemClock())
        pipeline = IngestPipeline(store, lambda event: None, Metrics(), clock=SystemClock())
        refused = []

        def add_new_sensors(t):
            for i in range(4):
                try:
                    pipeline.ingest([{"sensor_id": f"t{t}-{i}", "value": 1.0}], "http", batch=False)
                except SensorLimitReached:
                    refused.append(1)

        hammer(add_new_sensors)
        assert store.sensor_count() == 16
        assert len(refused) == THREADS * 4 - 16


def test_stateful_stages_take_one_batch_at_a_time():
    """Annotators and hooks keep per-sensor state (quality windows, alert
    timers, forecast sums): under threads they must never run two batches at once."""
    store = DataStore(max_sensors=10, recent_points=10, clock=SystemClock())
    history = MemoryHistory()
    bus = MessageBus(CollectorRegistry())
    bus.subscribe(ReadingsAccepted, lambda event: history.write_readings(event.records))
    pipeline = IngestPipeline(store, bus.publish, Metrics(), annotators=[DataQuality().annotate],
                              clock=SystemClock())
    inside, overlaps, repeats = [0], [], []

    def stateful_hook(event):
        records = event.live
        inside[0] += 1
        if inside[0] > 1:
            overlaps.append(inside[0])
        time.sleep(0)            # gives up the GIL, as any real work may
        inside[0] -= 1
        reason = records[0].quality_reason or ""
        if reason.startswith("flatline"):
            repeats.append(int(reason.split("same value ")[1].split()[0]))

    bus.subscribe(ReadingsAccepted, stateful_hook)

    def post(t):
        for _ in range(300):
            pipeline.ingest([{"sensor_id": "stuck", "value": 7.0, "metric": "flow"}], "http", batch=False)

    hammer(post)
    assert not overlaps, f"{len(overlaps)} batches ran the hooks alongside another"
    assert max(repeats) == THREADS * 300      # the flatline count lost no reading
    assert history.written == THREADS * 300
