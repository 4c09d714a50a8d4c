"""Leak detection edges: sub-second readings' memory, the curve far from learned flows,
and the night window's first second."""
import math
import random

import pytest

from app.services.leaks import LeakDetector
from app.services.local_time import HOUR_S

ZONES = {"A": 200.0, "B": 300.0, "C": 150.0, "D": 250.0, "E": 180.0}
CAPACITY = 1.4   # zone capacity as a multiple of its base demand
DAY_S = 86_400.0


def pressure(flow, base, leak_m=0.0):
    """The head-loss curve a zone follows: pressure falls with flow squared."""
    return 28 - 12 * (flow / (CAPACITY * base)) ** 2 - leak_m


def b_expected_after_a_step(step_s):
    """From 10:00 UTC the other zones report every 30 s at their base; B reports its inflow
    and pressure every minute at their base; B reports its inflow every `step_s` (its pressure
    once): 300 MLD for 90 minutes, then twice that (a new estate) for 30 minutes.
    What the city implies for B at the end."""
    detector = LeakDetector(list(ZONES))
    start, step_at, end = 10 * HOUR_S, 11.5 * HOUR_S, 12 * HOUR_S
    detector.observe("B", "pressure", pressure(300.0, 300.0), start)
    n = round((end - start) / step_s)
    others_every = round(60.0 / step_s)
    for k in range(n + 1):
        t = start + k * step_s
        if k % others_every == 0:
            for zone, base in ZONES.items():
                if zone != "B":
                    detector.observe(zone, "flow", base, t)
                    detector.observe(zone, "pressure", pressure(base, base), t)
        detector.observe("B", "flow", 300.0 if t < step_at else 600.0, t)
    return detector.current("B", end)


def test_a_zone_read_twice_a_second_remembers_its_share_over_reading_time_not_count():
    """B's usual share is a memory over SHARE_TAU_S (3 h) of reading time: read twice a second
    (14,400 readings in two hours) it is expected to draw what it is when read every 10 s."""
    fast, slow = b_expected_after_a_step(0.5), b_expected_after_a_step(10.0)
    assert fast.basis == slow.basis == "city"
    assert 300.0 < slow.expected < 600.0
    assert fast.expected == pytest.approx(slow.expected, rel=0.003)
    assert fast.excess_mld == pytest.approx(slow.excess_mld, rel=0.01)
