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


# Bengaluru's local time (IST) is UTC+5:30.
IST_H = 5.5
NIGHT_USE = 0.45   # night use as a share of a zone's base demand


def two_hourly_nights(detector, days, leak_day, leak_mld):
    """Loggers that upload every two hours on the even local hours: each zone's inflow at
    00:00, 02:00 and 04:00 local, at its night use (E `leak_mld` more on `leak_day`). The
    findings with their time."""
    found = []
    for day in range(days):
        for hour in (0.0, 2.0, 4.0):
            t = day * DAY_S + (hour - IST_H) * HOUR_S
            for zone, base in ZONES.items():
                flow = base * NIGHT_USE + (leak_mld if zone == "E" and day == leak_day else 0.0)
                found += [(t, f) for f in detector.observe(zone, "flow", flow, t)]
    return found


def test_the_night_window_opens_at_0200_local_so_a_two_hourly_logger_is_judged():
    """The window is 02:00-04:00 local, 02:00 included: zones read only at the even hours
    have their 02:00 reading as the night's flow, so E's night leak is found at 04:00 IST."""
    detector = LeakDetector(list(ZONES), utc_offset_h=IST_H)
    leak = 0.2 * ZONES["E"] * NIGHT_USE
    [(t, f)] = two_hourly_nights(detector, 3, leak_day=2, leak_mld=leak)
    assert t == 2 * DAY_S + (4 - IST_H) * HOUR_S
    assert (f.zone, f.rule, f.suspected) == ("E", "night", True)
    assert f.night_flow == pytest.approx(1.2 * ZONES["E"] * NIGHT_USE, rel=0.02)
    assert f.excess_mld == pytest.approx(leak, rel=0.1)
    assert f.evidence()["night_excess_pct"] == pytest.approx(20.0, abs=2.0)


def curve_after_a_burst():
    """Twenty minutes of a city whose demand moves gently (±5%, noise-free), then B bursts:
    100 MLD more and 10 m less pressure. The findings, and B's standing evidence 80 s on."""
    detector = LeakDetector(list(ZONES))
    found = []

    def round_(t, factor, burst=False):
        for zone, base in ZONES.items():
            flow = base * factor + (100.0 if zone == "B" and burst else 0.0)
            found.extend(detector.observe(zone, "flow", flow, t))
            found.extend(detector.observe(zone, "pressure", pressure(flow, base, 10.0 if zone == "B" and burst else 0.0), t))
    for k in range(240):
        round_(5 * k, 1 + 0.05 * math.sin(k / 20))
    for k in range(240, 257):
        round_(5 * k, 1.0, burst=True)
    return found, detector.current("B", 5 * 256)


def test_a_curve_learned_on_a_narrow_range_of_flows_does_not_explain_away_a_bursts_drop():
    """B's curve is learned on flows within 5% of its base; the burst draws a third more.
    Far from the learned flows the curve still explains what the burst's flow costs in
    pressure (the ridge only damps a slope a flat history cannot teach), so what is left
    unexplained is the burst's own 10 m."""
    found, standing = curve_after_a_burst()
    assert [(f.zone, f.suspected, f.rule) for f in found] == [("B", True, "balance")]
    assert standing.pressure_drop_m == pytest.approx(10.0, abs=1.0)
    assert standing.evidence()["pressure_drop_m"] == pytest.approx(10.0, abs=1.0)
    assert standing.excess_mld == pytest.approx(100.0, rel=0.05)
