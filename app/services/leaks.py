"""Leak detection per zone (district metered area) by mass balance and pressure.

A zone's metered inflow is compared with its expected consumption, and its
pressure with its usual level. Expected consumption is the forecast when one
exists, else a slow moving baseline of the inflow itself (time constant
BASELINE_TAU_S). A leak shows as both at once: inflow above expectation by
`excess_ratio` and pressure below its baseline by `pressure_drop_ratio`.
Either alone is ordinary (demand rises; pressure dips with it). Baselines
stop learning while a leak is suspected, so a lasting leak stays visible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

# Baselines follow slow change (the diurnal ramp) but not a sudden burst.
BASELINE_TAU_S = 600.0
# Readings of each kind a zone needs before it is judged at all.
WARM_UP_READINGS = 6
# A suspected leak clears once both signals fall under this share of their thresholds.
CLEAR_FRACTION = 0.5


@dataclass
class ZoneBalance:
    flow_base: float | None = None
    pressure_base: float | None = None
    flow: float | None = None
    pressure: float | None = None
    flow_seen: int = 0
    pressure_seen: int = 0
    last_flow_ts: float | None = None
    last_pressure_ts: float | None = None
    suspected: bool = False


@dataclass
class LeakFinding:
    zone: str
    suspected: bool           # True when raised, False when cleared
    excess: float             # inflow above expectation, as a fraction
    drop: float               # pressure below baseline, as a fraction
    inflow: float
    expected: float
    pressure: float
    pressure_base: float


def _follow(base: float | None, value: float, dt: float) -> float:
    if base is None:
        return value
    alpha = 1 - math.exp(-max(dt, 0.0) / BASELINE_TAU_S)
    return base + alpha * (value - base)


class LeakDetector:
    def __init__(self, zones: list[str], excess_ratio: float, pressure_drop_ratio: float,
                 expected: Callable[[str], float | None] = lambda zone: None):
        self.excess_ratio = excess_ratio
        self.pressure_drop_ratio = pressure_drop_ratio
        self.expected = expected
        self.zones = {zone: ZoneBalance() for zone in zones}

    def observe(self, zone: str, metric: str, value: float, ts: float) -> LeakFinding | None:
        """Take one zone reading; return a finding when the zone's state changes."""
        state = self.zones.get(zone)
        if state is None or metric not in ("flow", "pressure"):
            return None
        if metric == "flow":
            state.flow = value
            state.flow_seen += 1
            if not state.suspected:
                state.flow_base = _follow(state.flow_base, value, ts - (state.last_flow_ts or ts))
            state.last_flow_ts = ts
        else:
            state.pressure = value
            state.pressure_seen += 1
            if not state.suspected:
                state.pressure_base = _follow(state.pressure_base, value,
                                              ts - (state.last_pressure_ts or ts))
            state.last_pressure_ts = ts
        return self._judge(zone, state)

    def _judge(self, zone: str, state: ZoneBalance) -> LeakFinding | None:
        if min(state.flow_seen, state.pressure_seen) < WARM_UP_READINGS:
            return None
        expected = self.expected(zone) or state.flow_base
        if not expected or not state.pressure_base:
            return None
        excess = (state.flow - expected) / expected
        drop = (state.pressure_base - state.pressure) / state.pressure_base
        finding = LeakFinding(zone, state.suspected, excess, drop, state.flow, expected,
                              state.pressure, state.pressure_base)
        if not state.suspected and excess > self.excess_ratio and drop > self.pressure_drop_ratio:
            state.suspected = finding.suspected = True
            return finding
        if state.suspected and (excess < self.excess_ratio * CLEAR_FRACTION
                                and drop < self.pressure_drop_ratio * CLEAR_FRACTION):
            state.suspected = finding.suspected = False
            return finding
        return None
