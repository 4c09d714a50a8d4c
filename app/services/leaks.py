"""Leak detection per zone (district metered area): local excess against the city.

Two facts separate a leak from a change of demand (DOMAIN.md, "Leak detection"):

- **A demand move is city-wide, a leak is local.** Each zone's inflow is
  compared with what the rest of the city implies: its usual share of the
  city's inflow times what the other zones draw now. A baseline change for
  the whole city, a surge spread over it or the diurnal ramp moves every zone
  together and leaves this *excess* at zero. Pressure is judged the same
  way: each zone learns how its pressure falls as its inflow rises (head
  loss grows with flow squared), and the drop that its own flow does not
  explain is compared with the median such drop over the city.
- **A leak persists at night.** The minimum night flow (lowest one-hour mean
  between 02:00 and 04:00 local time) of each zone, as a share of the city's,
  is learned night by night; a rise of more than `night_excess_ratio` flags a
  leak too small to see against the day's demand.

A leak is suspected when the zone's excess inflow is above `excess_ratio` and
its unexplained pressure drop is above `pressure_drop_ratio` of its pressure,
both at once (either alone is ordinary), or by the night rule. Baselines stop
learning from a zone while it looks anomalous, so a lasting leak stays
visible. Every finding carries its evidence.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from app.services.local_time import HOUR_S, local_hour

# Readings are smoothed over this long (s), so one noisy reading is not a leak.
SMOOTH_TAU_S = 20.0
# Memory of a zone's share of the city's inflow and of its pressure curve (s).
SHARE_TAU_S = 3 * HOUR_S
CURVE_TAU_S = 6 * HOUR_S
# Own-level baseline used when too few other zones report (s).
OWN_BASELINE_TAU_S = 600.0
# Paired flow and pressure readings a zone needs before it is judged at all.
WARM_UP_READINGS = 6
# Other zones with fresh inflow needed to compare a zone with the city.
MIN_PEERS = 3
# A zone's inflow counts as fresh for this long (s).
FRESH_S = 60.0
# Ridge on the pressure curve's slope: a flat history teaches no slope.
CURVE_RIDGE = 0.001
# A suspected leak clears once its pressure drop falls under this share of the threshold.
CLEAR_FRACTION = 0.5
# Both signals must hold (or, to clear, stay cleared) this long (s of reading time):
# a pressure transient, or a zone whose supply chatters at an empty reservoir, is not a leak.
CONFIRM_S = 30.0
# City-wide sums and the median drop are refreshed at most this often (s of reading
# time), so a reading costs O(1) even on a network of thousands of zones.
CITY_REFRESH_S = 1.0
# Up to this many zones, each zone is compared with the others exactly.
EXACT_ZONES = 50
# Local hours of the minimum night flow window, and the rolling mean's time constant (s).
NIGHT_START_H, NIGHT_END_H = 2.0, 4.0
NIGHT_MEAN_TAU_S = 1800.0
# How fast the learned night share follows new nights.
NIGHT_SHARE_ALPHA = 0.3


def _smooth(old: float | None, value: float, dt: float, tau: float) -> float:
    return value if old is None else old + (1 - math.exp(-max(dt, 0.0) / tau)) * (value - old)


def _alpha(dt: float, tau: float, seen: int) -> float:
    """Weight of a new value: a running mean at first, then an exponential memory."""
    return max(1.0 / max(seen, 1), 1 - math.exp(-max(dt, 0.0) / tau))


@dataclass
class ZoneState:
    flow: float | None = None            # smoothed inflow (MLD)
    pressure: float | None = None        # smoothed pressure (m)
    flow_ts: float | None = None
    pressure_ts: float | None = None
    flow_ref: float | None = None        # scale for the curve's x = (flow / flow_ref)^2
    share: float | None = None           # usual share of the city's inflow
    share_seen: int = 0
    own_base: float | None = None        # slow own-level baseline
    # Pressure curve p = mean_p + slope * (x - mean_x), from exponentially weighted moments.
    pairs: int = 0
    mean_x: float = 0.0
    mean_p: float = 0.0
    var_x: float = 0.0
    cov_xp: float = 0.0
    unexplained: float = 0.0             # pressure drop its own flow does not explain (m)
    suspected: bool = False
    rule: str | None = None              # "balance" or "night"
    since: float | None = None           # when the excess began
    holding_since: float | None = None   # when both signals last began to hold (or to clear)
    # Minimum night flow.
    night_mean: float | None = None
    night_min: float | None = None
    night_share: float | None = None
    last_mnf: float | None = None
    last_mnf_excess: float | None = None
    finding: "LeakFinding | None" = None   # what raised the suspicion


@dataclass
class LeakFinding:
    zone: str
    suspected: bool           # True when raised, False when cleared
    rule: str                 # balance | night
    excess: float             # inflow above expectation, as a fraction
    excess_mld: float
    inflow: float
    expected: float           # what the city-wide move implies for this zone (MLD)
    pressure: float | None    # None: the zone reports no pressure (a night finding)
    pressure_drop_m: float    # unexplained pressure drop (m)
    duration_s: float         # how long the excess has lasted
    night_flow: float | None = None        # last minimum night flow (MLD)
    night_excess: float | None = None      # its rise over the learned night share
    basis: str = "city"                    # city | own (too few other zones report)

    def evidence(self) -> dict:
        return {"rule": self.rule, "basis": self.basis,
                "inflow_mld": round(self.inflow, 1), "expected_mld": round(self.expected, 1),
                "excess_mld": round(self.excess_mld, 1), "excess_pct": round(100 * self.excess, 1),
                "pressure_m": None if self.pressure is None else round(self.pressure, 2), "pressure_drop_m": round(self.pressure_drop_m, 2),
                "duration_s": round(self.duration_s),
                "night_flow_mld": None if self.night_flow is None else round(self.night_flow, 1),
                "night_excess_pct": None if self.night_excess is None else round(100 * self.night_excess, 1)}


class LeakDetector:
    def __init__(self, zones: list[str], excess_ratio: float = 0.02, pressure_drop_ratio: float = 0.05,
                 night_excess_ratio: float = 0.10, utc_offset_h: float = 0.0, exact_zones: int = EXACT_ZONES):
        self.excess_ratio = excess_ratio
        self.pressure_drop_ratio = pressure_drop_ratio
        self.night_excess_ratio = night_excess_ratio
        self.utc_offset_h = utc_offset_h
        self.zones = {zone: ZoneState() for zone in zones}
        self._night_open = False
        self._exact = len(self.zones) <= exact_zones
        self._city_at: float | None = None
        # Flow and share sums over zones with a share, their count, median drop, zones judged,
        # and the flow of every zone reporting and their count.
        self._city = (0.0, 0.0, 0, 0.0, 0, 0.0, 0)

    # -- readings ----------------------------------------------------------------
    def observe(self, zone: str, metric: str, value: float, ts: float) -> list[LeakFinding]:
        """Take one zone reading; return findings for zones whose state changed."""
        state = self.zones.get(zone)
        if state is None or metric not in ("flow", "pressure") or not math.isfinite(value):
            return []
        findings: list[LeakFinding] = []
        last = state.flow_ts if metric == "flow" else state.pressure_ts
        dt = ts - last if last is not None else 0.0
        if dt < 0:
            return []                        # a late reading: the smoothed value has moved on
        if metric == "flow":
            state.flow = _smooth(state.flow, value, dt, SMOOTH_TAU_S)
            state.flow_ts = ts
            state.flow_ref = state.flow_ref or max(value, 1e-6)
            findings += self._night(state, value, ts, dt)
        else:
            state.pressure = _smooth(state.pressure, value, dt, SMOOTH_TAU_S)
            state.pressure_ts = ts
        if state.flow is not None and state.pressure is not None:
            finding = self._judge(zone, state, ts, dt)
            if finding:
                state.finding = finding if finding.suspected else None
                findings.append(finding)
        return findings

    # -- the balance rule ------------------------------------------------------------
    def expected(self, zone: str, ts: float) -> tuple[float | None, str]:
        """Inflow the rest of the city implies for `zone` now, and on what basis."""
        state = self.zones[zone]
        if self._exact:
            peers = [s for z, s in self.zones.items() if z != zone and s.share and s.flow is not None
                     and s.flow_ts is not None and ts - s.flow_ts <= FRESH_S]
            flow, share, count = sum(s.flow for s in peers), sum(s.share for s in peers), len(peers)
        else:
            flow, share, count, _, _, _, _ = self._city_now(ts)
            if self._fresh_share(state, ts):     # the cached sums include this zone: take it out
                flow, share, count = flow - state.flow, share - state.share, count - 1
        if count >= MIN_PEERS and state.share and share > 0:
            return state.share * flow / share, "city"
        return state.own_base, "own"

    def _fresh_share(self, state: ZoneState, ts: float) -> bool:
        return bool(state.share and state.flow is not None and state.flow_ts is not None
                    and ts - state.flow_ts <= FRESH_S)

    def _city_now(self, ts: float) -> tuple[float, float, int, float, int, float, int]:
        """City-wide sums over zones with fresh inflow, and the median unexplained drop."""
        if self._city_at is None or ts - self._city_at >= CITY_REFRESH_S or ts < self._city_at:
            fresh = [s for s in self.zones.values() if self._fresh_share(s, ts)]
            drops = [s.unexplained for s in self.zones.values() if s.pairs >= WARM_UP_READINGS
                     and s.pressure_ts is not None and ts - s.pressure_ts <= FRESH_S]
            reporting = [s.flow for s in self.zones.values() if s.flow is not None
                         and s.flow_ts is not None and ts - s.flow_ts <= FRESH_S]
            self._city = (sum(s.flow for s in fresh), sum(s.share for s in fresh), len(fresh),
                          statistics.median(drops) if drops else 0.0, len(drops), sum(reporting), len(reporting))
            self._city_at = ts
        return self._city

    def _x(self, state: ZoneState) -> float:
        return (state.flow / state.flow_ref) ** 2

    def _curve(self, state: ZoneState, x: float) -> float:
        slope = state.cov_xp / (state.var_x + CURVE_RIDGE)
        return state.mean_p + slope * (x - state.mean_x)

    def current(self, zone: str, ts: float) -> LeakFinding | None:
        """The zone's evidence now, without judging it (None before warm-up)."""
        state = self.zones[zone]
        if state.flow is None or state.pressure is None:
            return None
        return self._measure(zone, state, ts)[0]

    def _measure(self, zone: str, state: ZoneState, ts: float) -> tuple[LeakFinding | None, float, float]:
        """Excess inflow and unexplained pressure drop against the city; and the thresholds' base."""
        x = self._x(state)
        if state.pairs:
            state.unexplained = self._curve(state, x) - state.pressure
        if self._exact:
            others = [s.unexplained for z, s in self.zones.items() if z != zone and s.pairs >= WARM_UP_READINGS
                      and s.pressure_ts is not None and ts - s.pressure_ts <= FRESH_S]
            median, judged = (statistics.median(others) if others else 0.0), len(others)
        else:
            _, _, _, median, judged, _, _ = self._city_now(ts)
        drop = state.unexplained - (median if judged >= MIN_PEERS else 0.0)
        threshold_m = self.pressure_drop_ratio * max(state.mean_p or state.pressure, 1.0)
        expected, basis = self.expected(zone, ts)
        if state.pairs < WARM_UP_READINGS or not expected:
            return None, x, threshold_m
        excess = (state.flow - expected) / expected
        since = state.since if state.since is not None else ts
        return (LeakFinding(zone, state.suspected, state.rule or "balance", excess, state.flow - expected,
                            state.flow, expected, state.pressure, drop, ts - since,
                            state.last_mnf, state.last_mnf_excess, basis), x, threshold_m)

    def _judge(self, zone: str, state: ZoneState, ts: float, dt: float) -> LeakFinding | None:
        finding, x, threshold_m = self._measure(zone, state, ts)
        half_flow, half_drop = self.excess_ratio * CLEAR_FRACTION, threshold_m * CLEAR_FRACTION
        candidate = finding is not None and finding.excess > half_flow and finding.pressure_drop_m > half_drop
        # A city-wide move shifts pressure but not the excess: keep learning through it.
        if not state.suspected and not candidate:
            self._learn(state, x, ts, dt)
        if finding is None:
            return None
        if finding.excess > half_flow or finding.pressure_drop_m > half_drop:
            state.since = state.since if state.since is not None else ts
        elif not state.suspected:
            state.since = None
        if not state.suspected:
            holds = finding.excess > self.excess_ratio and finding.pressure_drop_m > threshold_m
        else:   # pressure is the sharp signal: once it is back, the leak is over
            holds = state.rule == "balance" and finding.pressure_drop_m < half_drop
        if not holds:
            state.holding_since = None
            return None
        state.holding_since = state.holding_since if state.holding_since is not None else ts
        if ts - state.holding_since < CONFIRM_S:
            return None
        state.holding_since = None
        if not state.suspected:
            state.suspected, state.rule = True, "balance"
            finding.suspected, finding.rule = True, "balance"
            finding.duration_s = ts - (state.since if state.since is not None else ts)
            return finding
        state.suspected, state.rule, state.since = False, None, None
        finding.suspected = False
        return finding

    def _learn(self, state: ZoneState, x: float, ts: float, dt: float) -> None:
        """Baselines follow the zone only while it looks ordinary."""
        state.pairs += 1
        a = _alpha(dt, CURVE_TAU_S, state.pairs)
        dx, dp = x - state.mean_x, state.pressure - state.mean_p
        state.mean_x += a * dx
        state.mean_p += a * dp
        state.var_x = (1 - a) * (state.var_x + a * dx * dx)
        state.cov_xp = (1 - a) * (state.cov_xp + a * dx * dp)
        if self._exact:
            reporting = [s.flow for s in self.zones.values()
                         if s.flow is not None and s.flow_ts is not None and ts - s.flow_ts <= FRESH_S]
            total, count = sum(reporting), len(reporting)
        else:
            total, count = self._city_now(ts)[5:]
        # A share is learned only against a city that reports: at start-up the first zones' total
        # (or sums cached before the others reported) would teach each zone a share near 1, which
        # the running mean carries for hours and which hides a leak behind an inflated expectation.
        if total > 0 and count > MIN_PEERS:
            state.share_seen += 1
            share = state.flow / total
            state.share = share if state.share is None else \
                state.share + _alpha(dt, SHARE_TAU_S, state.share_seen) * (share - state.share)
        state.own_base = _smooth(state.own_base, state.flow, dt, OWN_BASELINE_TAU_S)

    # -- the night rule -----------------------------------------------------------------
    def _night(self, state: ZoneState, value: float, ts: float, dt: float) -> list[LeakFinding]:
        """Track each zone's minimum night flow; judge all zones when the window closes."""
        hour = local_hour(ts, self.utc_offset_h)
        in_window = NIGHT_START_H <= hour < NIGHT_END_H
        state.night_mean = _smooth(state.night_mean, value, dt, NIGHT_MEAN_TAU_S)
        if in_window:
            self._night_open = True
            state.night_min = state.night_mean if state.night_min is None else min(state.night_min, state.night_mean)
            return []
        if self._night_open and hour >= NIGHT_END_H:
            self._night_open = False
            return self._close_night()
        return []

    def _close_night(self) -> list[LeakFinding]:
        nights = {z: s.night_min for z, s in self.zones.items() if s.night_min}
        total = sum(nights.values())
        findings = []
        for zone, mnf in nights.items():
            state = self.zones[zone]
            state.last_mnf = mnf
            share = mnf / total
            if state.night_share is None or len(nights) < MIN_PEERS + 1:
                state.night_share = share
                continue
            others = total - mnf
            expected = state.night_share / (1 - state.night_share) * others
            state.last_mnf_excess = mnf / expected - 1
            finding = LeakFinding(zone, True, "night", state.last_mnf_excess, mnf - expected, mnf,
                                  expected, state.pressure, state.unexplained,
                                  (NIGHT_END_H - NIGHT_START_H) * HOUR_S, mnf, state.last_mnf_excess)
            if state.last_mnf_excess > self.night_excess_ratio:
                if not state.suspected:
                    state.suspected, state.rule, state.finding = True, "night", finding
                    findings.append(finding)
            else:
                state.night_share += NIGHT_SHARE_ALPHA * (share - state.night_share)
                if state.suspected and state.rule == "night":
                    state.suspected, state.rule, state.finding = False, None, None
                    finding.suspected = False
                    findings.append(finding)
        for state in self.zones.values():
            state.night_min = None
        return findings

    def suspected(self) -> dict[str, LeakFinding]:
        """Zones under suspicion now, with the finding that raised it."""
        return {z: s.finding for z, s in self.zones.items() if s.suspected and s.finding}
