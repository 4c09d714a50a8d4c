"""Demand forecast per zone: a learned daily profile times a smoothed level.

Zone inflow is averaged into 15-minute slots. Each slot of the day keeps a
profile value learned across days (exponential smoothing, PROFILE_ALPHA), and
the zone keeps a level: the smoothed ratio of actual to profile (LEVEL_ALPHA),
which follows a shift in demand within hours instead of a day. The forecast
for a slot ahead is level x profile[slot]. Until a slot has a profile, the
last smoothed value stands in (simple exponential smoothing).

Before the first slot of a zone is finished there is nothing learned, so the
view shows a profile-based estimate instead, labelled as such (`estimate`):
the zone's base demand from the network model, or its readings so far in the
current slot, shaped by a typical two-peak day (TYPICAL_DAY).

Every finished slot is scored against what was forecast for it an hour
before, and against seasonal-naive (the same slot a day earlier), and both
mean absolute percentage errors are reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from app.domain.records import GOOD, Reading
from app.services.local_time import local_hour

SLOT_S = 900.0
SLOTS_PER_DAY = 96
HORIZON_STEPS = 4            # one hour ahead, in 15-minute steps
PROFILE_ALPHA = 0.3          # how fast a slot's profile follows new days
LEVEL_ALPHA = 0.3            # how fast the demand level follows recent slots
# A slot needs this much of its 15 minutes covered by readings to count.
MIN_SLOT_READINGS = 1


def _typical_shape(hour: float) -> float:
    """A typical urban day: a morning peak near 07:00 and an evening one near 19:30."""
    return (0.45 + 0.6 * math.exp(-((hour - 7.0) / 2.0) ** 2)
            + 0.5 * math.exp(-((hour - 19.5) / 2.5) ** 2))


_TYPICAL_MEAN = sum(_typical_shape(m / 60) for m in range(1440)) / 1440


def typical_day(ts: float, utc_offset_h: float = 0.0) -> float:
    """TYPICAL_DAY: demand at `ts` (local time) relative to the day's mean (1.0 = average)."""
    return _typical_shape(local_hour(ts, utc_offset_h)) / _TYPICAL_MEAN


def slot_of(ts: float) -> int:
    return int(ts // SLOT_S)


@dataclass
class ZoneForecast:
    profile: dict[int, float] = field(default_factory=dict)     # slot of day -> MLD
    level: float = 1.0
    smoothed: float | None = None
    history: dict[int, float] = field(default_factory=dict)     # absolute slot -> mean actual
    forecasts: dict[int, float] = field(default_factory=dict)   # absolute slot -> forecast made an hour before
    errors: list[float] = field(default_factory=list)
    naive_errors: list[float] = field(default_factory=list)
    current_slot: int | None = None
    current_sum: float = 0.0
    current_count: int = 0
    # Weather covariates (app.services.weather_effect): the factor on a slot's base
    # forecast, and the learner fed each finished slot's actual against its base.
    weather_factor: Callable[[float], float] | None = None
    weather_learn: Callable[[float, float, float], None] | None = None

    def observe(self, ts: float, value: float) -> bool:
        """Take one reading; True when a slot was completed (the forecast moved)."""
        slot = slot_of(ts)
        if self.current_slot is None:
            self.current_slot = slot
        if slot < self.current_slot:
            return False                      # a late reading for a finished slot
        completed = False
        if slot > self.current_slot:
            if self.current_count >= MIN_SLOT_READINGS:
                self._finish(self.current_slot, self.current_sum / self.current_count)
                completed = True
            self.current_slot, self.current_sum, self.current_count = slot, 0.0, 0
        self.current_sum += value
        self.current_count += 1
        return completed

    def _finish(self, slot: int, actual: float) -> None:
        predicted = self.forecasts.pop(slot, None)
        if predicted is not None and actual > 0:
            self.errors.append(abs(predicted - actual) / actual)
            naive = self.history.get(slot - SLOTS_PER_DAY)
            if naive is not None:
                self.naive_errors.append(abs(naive - actual) / actual)
        day_slot = slot % SLOTS_PER_DAY
        known = self.profile.get(day_slot)
        observed = actual
        if self.weather_factor is not None:
            if known and self._has_day():
                self.weather_learn(slot * SLOT_S, actual, self.level * known)
            # The profile and level learn demand with the weather's share taken out.
            actual = actual / self.weather_factor(slot * SLOT_S)
        if known:
            self.level += LEVEL_ALPHA * (actual / known - self.level)
            self.profile[day_slot] = known + PROFILE_ALPHA * (actual / self.level - known)
        else:
            self.profile[day_slot] = actual / self.level
        actual = observed
        self.smoothed = actual if self.smoothed is None else self.smoothed + LEVEL_ALPHA * (actual - self.smoothed)
        self.history[slot] = actual
        for old in [s for s in self.history if s < slot - SLOTS_PER_DAY - 1]:
            del self.history[old]
        # Remember what we now forecast for the slot an hour ahead, to score it later.
        ahead = slot + HORIZON_STEPS
        self.forecasts[ahead] = self.predict(ahead)
        for old in [s for s in self.forecasts if s < slot]:
            del self.forecasts[old]

    def predict(self, slot: int) -> float | None:
        profile = self.profile.get(slot % SLOTS_PER_DAY)
        if profile is not None and self._has_day():
            factor = self.weather_factor(slot * SLOT_S) if self.weather_factor else 1.0
            return self.level * profile * factor
        return self.smoothed

    def _has_day(self) -> bool:
        return len(self.profile) >= SLOTS_PER_DAY // 2

    def mape(self) -> tuple[float | None, float | None]:
        def mean(values):
            return round(100 * sum(values) / len(values), 2) if values else None
        return mean(self.errors[-SLOTS_PER_DAY:]), mean(self.naive_errors[-SLOTS_PER_DAY:])


class DemandForecaster:
    def __init__(self, zones: list[str], flow_sensors: dict[str, str] | None = None,
                 on_update=lambda view: None, base_demand: dict[str, float] | None = None,
                 weather=None, utc_offset_h: float = 0.0):
        """`weather`: an app.services.weather_effect.WeatherEffect, or None for no covariates."""
        self.zones = {zone: ZoneForecast() for zone in zones}
        # Zone -> mean demand (MLD) from the network model: the estimate's scale before any reading.
        self.base_demand = base_demand or {}
        self.utc_offset_h = utc_offset_h
        if weather is not None:
            for zone, state in self.zones.items():
                state.weather_factor = lambda ts, zone=zone: weather.factor(zone, ts)
                state.weather_learn = lambda ts, actual, base, zone=zone: weather.learn(zone, ts, actual, base)
        self.flow_sensors = flow_sensors or {}   # sensor id -> zone it meters
        self.on_update = on_update

    def observe_records(self, records: list[Reading]) -> None:
        """Pipeline hook: zone inflow readings feed the forecast."""
        moved = False
        for record in records:
            zone = self.flow_sensors.get(record.sensor_id)
            if zone is not None and record.quality == GOOD:
                moved |= self.observe(zone, record.ts, record.value)
        if moved:
            self.on_update(self.view(records[-1].ts))

    def observe(self, zone: str, ts: float, value: float) -> bool:
        state = self.zones.get(zone)
        return state.observe(ts, value) if state is not None and math.isfinite(value) else False

    def next_step(self, zone: str) -> float | None:
        """Forecast demand of the coming 15 minutes, or None while nothing is learned."""
        state = self.zones.get(zone)
        if state is None or state.current_slot is None:
            return None
        return state.predict(state.current_slot + 1)

    def expected_now(self, zone: str) -> float | None:
        """Expected consumption now from a learned daily profile; None without one."""
        state = self.zones.get(zone)
        if state is None or state.current_slot is None or not state._has_day():
            return None
        return state.predict(state.current_slot)

    def recent_error(self) -> float | None:
        """Mean absolute percentage error of the hour-ahead forecast over the last
        day, across zones; None until a forecast has been scored."""
        scored = [mape for mape, _naive in (state.mape() for state in self.zones.values()) if mape is not None]
        return sum(scored) / len(scored) if scored else None

    def profile_at(self, zone: str, ts: float) -> float | None:
        """Forecast demand of the 15-minute slot holding `ts` (any time ahead), from the
        learned daily profile and level; None until a day's profile is learned."""
        state = self.zones.get(zone)
        if state is None or not state._has_day():
            return None
        return state.predict(slot_of(ts))

    def view(self, now: float) -> dict:
        zones = []
        for zone, state in self.zones.items():
            learned = state.current_slot is not None and state.smoothed is not None
            if not learned:
                estimate = self._estimate(zone, state, now)
                if estimate is not None:
                    zones.append(estimate)
                continue
            mape, naive = state.mape()
            steps = [{"t": (state.current_slot + k) * SLOT_S, "demand": _round(state.predict(state.current_slot + k))}
                     for k in range(1, HORIZON_STEPS + 1)]
            zones.append({"node_id": zone, "steps": steps, "method":
                          "profile x level" if state._has_day() else "exponential smoothing",
                          "estimate": False, "mape": mape, "seasonal_naive_mape": naive,
                          "slots_learned": len(state.profile)})
        return {"generated_at": now, "step_s": SLOT_S, "zones": zones}

    def _estimate(self, zone: str, state: ZoneForecast, now: float) -> dict | None:
        """No finished slot yet: the typical day scaled by what we know of the zone."""
        if state.current_count:
            level, basis = state.current_sum / state.current_count / typical_day(now, self.utc_offset_h), "readings so far"
        elif zone in self.base_demand:
            level, basis = self.base_demand[zone], "base demand"
        else:
            return None
        current = slot_of(now)
        steps = [{"t": (current + k) * SLOT_S, "demand": _round(level * typical_day((current + k + 0.5) * SLOT_S, self.utc_offset_h))}
                 for k in range(1, HORIZON_STEPS + 1)]
        return {"node_id": zone, "steps": steps, "estimate": True,
                "method": f"profile estimate: typical day x {basis} (history too short)",
                "mape": None, "seasonal_naive_mape": None, "slots_learned": 0}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
