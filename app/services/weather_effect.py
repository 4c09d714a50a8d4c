"""Weather as covariates of the demand forecast: how much hotter or rainier hours change demand.

Demand = base (daily profile x level) x exp(b_t x (T - T_REF) + b_r x rain). The
two coefficients are learned per zone by recursive least squares on
log(actual / base) as slots finish, so a city where heat raises demand and
rain lowers it (garden and construction use) is learned from its own data.
Hours come from the weather source (observed and forecast, e.g. Open-Meteo);
a slot without a known hour gets no adjustment.
"""
from __future__ import annotations

import math
import threading

from app.services.local_time import HOUR_S

# Temperature the effect is measured from (°C): a mild Bengaluru hour.
T_REF_C = 25.0
# RLS forgetting factor: about a month of 15-minute slots in memory.
FORGET = 0.9997
# Initial uncertainty of the coefficients (large: learn fast from nothing).
PRIOR_VARIANCE = 100.0
# The adjustment factor is kept within these bounds whatever is learned.
MIN_FACTOR, MAX_FACTOR = 0.5, 2.0
# Slots learned before the effect is applied.
MIN_SLOTS = 96


class _Rls:
    """2-parameter recursive least squares (no intercept: the base carries the level)."""

    def __init__(self):
        self.b = [0.0, 0.0]
        self.p = [[PRIOR_VARIANCE, 0.0], [0.0, PRIOR_VARIANCE]]
        self.n = 0

    def update(self, x: tuple[float, float], y: float) -> None:
        p, b = self.p, self.b
        px = [p[0][0] * x[0] + p[0][1] * x[1], p[1][0] * x[0] + p[1][1] * x[1]]
        denom = FORGET + x[0] * px[0] + x[1] * px[1]
        gain = [px[0] / denom, px[1] / denom]
        error = y - (b[0] * x[0] + b[1] * x[1])
        self.b = [b[0] + gain[0] * error, b[1] + gain[1] * error]
        self.p = [[(p[i][j] - gain[i] * px[j]) / FORGET for j in range(2)] for i in range(2)]
        self.n += 1


class WeatherEffect:
    def __init__(self):
        self._hours: dict[int, tuple[float | None, float | None]] = {}
        self._zones: dict[str, _Rls] = {}
        self._lock = threading.Lock()

    def observe_weather(self, hours) -> None:
        """Hours `(ts, temperature_c, precipitation_mm)`: observed ones overwrite forecasts."""
        with self._lock:
            for ts, temperature, rain in hours:
                self._hours[int(ts // HOUR_S)] = (temperature, rain)
            if len(self._hours) > 24 * 120:        # keep about four months
                for hour in sorted(self._hours)[:-24 * 120]:
                    del self._hours[hour]

    def _x(self, ts: float) -> tuple[float, float] | None:
        # Open-Meteo's hour T covers the hour ending at T: a slot belongs to the next hour mark.
        hour = self._hours.get(int(math.ceil(ts / HOUR_S))) or self._hours.get(int(ts // HOUR_S))
        if hour is None or hour[0] is None:
            return None
        return (hour[0] - T_REF_C, hour[1] or 0.0)

    def factor(self, zone: str, ts: float) -> float:
        """Multiplier of the base forecast for the slot starting at `ts`."""
        model, x = self._zones.get(zone), self._x(ts)
        if model is None or x is None or model.n < MIN_SLOTS:
            return 1.0
        return min(MAX_FACTOR, max(MIN_FACTOR, math.exp(model.b[0] * x[0] + model.b[1] * x[1])))

    def learn(self, zone: str, ts: float, actual: float, base: float) -> None:
        x = self._x(ts)
        if x is None or actual <= 0 or base <= 0:
            return
        with self._lock:
            self._zones.setdefault(zone, _Rls()).update(x, math.log(actual / base))

    def coefficients(self, zone: str) -> tuple[float, float] | None:
        model = self._zones.get(zone)
        return tuple(model.b) if model else None
