"""The in-memory fixed windows behind the default RATELIMIT_STORAGE_URI=memory://."""
import threading

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from app.api import limits as limits_module
from app.api.limits import LocalFixedWindow


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_counts_like_the_limits_library_window_by_window():
    clock = Clock()
    ours = LocalFixedWindow(clock)
    item = parse("3 per second")
    assert [ours.hit(item, "ingest", "dev:a") for _ in range(5)] == [True, True, True, False, False]
    assert ours.hit(item, "ingest", "dev:b")                  # another key has its own window
    reset, remaining = ours.get_window_stats(item, "ingest", "dev:a")
    assert reset == 1001.0 and remaining == 0
    clock.t = 1001.0                                           # the window has passed
    assert ours.hit(item, "ingest", "dev:a")
    # The library's own strategy gives the same verdicts for the same hits.
    theirs = FixedWindowRateLimiter(MemoryStorage())
    assert [theirs.hit(item, "ingest", "x") for _ in range(5)] == [True, True, True, False, False]


def test_refused_hits_keep_a_flood_limited_and_expired_windows_are_swept(monkeypatch):
    clock = Clock()
    ours = LocalFixedWindow(clock)
    item = parse("2 per minute")
    for _ in range(10):
        ours.hit(item, "ingest", "ip:1")
    assert ours.get_window_stats(item, "ingest", "ip:1")[1] == 0
    monkeypatch.setattr(limits_module, "MAX_WINDOWS", 50)
    for i in range(49):
        ours.hit(item, "ingest", f"ip:old{i}")
    clock.t += 61
    ours.hit(item, "ingest", "ip:new")                      # the 51st key sweeps the expired
    assert len(ours._windows) == 1


def test_no_hit_is_lost_between_threads():
    ours = LocalFixedWindow()
    item = parse("100000 per hour")
    workers = [threading.Thread(target=lambda: [ours.hit(item, "s", "k") for _ in range(5000)])
               for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert ours.get_window_stats(item, "s", "k")[1] == 100000 - 40000
