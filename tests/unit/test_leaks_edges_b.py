"""Leak detection edges: which zones count in the city while others are silent or warming up."""
import math
import random

import pytest

from app.services.leaks import LeakDetector
from tests.unit.test_leaks import PATHS, ZONES, pressure


@pytest.mark.parametrize("path", list(PATHS))
def test_zones_silent_across_a_fall_of_demand_leave_the_city_shares_as_they_were(path):
    """C, D and E go silent for over four minutes; meanwhile demand falls by 30% in A and B.
    Only two zones report, too few to learn a share from (their last flows, at the old demand,
    are no city total), so when all five report again at the new demand each zone's inflow is
    what the city implies: no excess anywhere in the evidence."""
    rng = random.Random(21)
    detector = LeakDetector(list(ZONES), exact_zones=PATHS[path])
    found = []

    def round_(k, factor, zones=ZONES):
        for zone in zones:
            flow = ZONES[zone] * factor * (1 + rng.gauss(0, 0.01))
            found.extend(detector.observe(zone, "flow", flow, 5 * k))
            found.extend(detector.observe(zone, "pressure", pressure(flow, ZONES[zone]), 5 * k))
    for k in range(20):                     # a gently moving city: shares learned
        round_(k, 1 + 0.1 * math.sin(k / 5))
    for k in range(20, 34):                 # C, D, E silent; their flows go stale after a minute
        round_(k, 1.0, "AB")
    for k in range(34, 60):                 # demand falls, still only A and B report
        round_(k, 0.7, "AB")
    round_(60, 0.7)                         # all five report again
    assert found == []
    excess_pct = {zone: detector.current(zone, 5 * 60 + 1).evidence()["excess_pct"] for zone in ZONES}
    assert all(abs(pct) < 2.5 for pct in excess_pct.values()), excess_pct


@pytest.mark.parametrize("path", list(PATHS))
def test_zones_count_in_the_citys_median_drop_from_their_sixth_paired_reading(path):
    """Every zone starts up at once, a reading every 30 s (all inflows, then all pressures),
    and the whole city's pressure falls 3 m from the third round. At the fourth round C, D and
    E have just had their sixth paired reading (their pressures not read yet): they already
    count in the median drop, so B's evidence a second later shows the city-wide fall taken
    out of its drop (about 1.8 m would stand without them)."""
    detector = LeakDetector(list(ZONES), exact_zones=PATHS[path])
    found = []
    for k in range(4):
        t = 30.0 * k
        for zone, base in ZONES.items():
            found += detector.observe(zone, "flow", base, t)
        for zone in ZONES:
            found += detector.observe(zone, "pressure", 28.0 if k < 2 else 25.0, t)
            if zone == "B":
                standing = detector.current("B", t + 1)
                paired = [detector.zones[other].pairs for other in "CDE"]
    assert found == []
    assert paired == [6, 6, 6]
    assert standing.basis == "city"
    assert abs(standing.evidence()["pressure_drop_m"]) < 0.5
