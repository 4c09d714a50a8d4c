"""Time-of-day electricity tariff (Rs/kWh) that prices pumping energy per plan step.

`TARIFF` is JSON: {"base": 7.0, "periods": [["22:00", "06:00", -1.0], ...]},
each period adding its delta to the base between two local times (a period
may wrap midnight), or a plain number for a flat rate. The default is
BESCOM-like: Rs 7/kWh, -1 from 22:00 to 06:00, +1 from 06:00 to 10:00 and
from 18:00 to 22:00.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from app.services.local_time import local_hour

DEFAULT_TARIFF = {"base": 7.0, "periods": [["22:00", "06:00", -1.0], ["06:00", "10:00", 1.0],
                                           ["18:00", "22:00", 1.0]]}


def _hours(text: str) -> float:
    hours, _, minutes = str(text).partition(":")
    value = int(hours) + int(minutes or 0) / 60
    if not 0 <= value <= 24:
        raise ValueError(f"time of day out of range: {text}")
    return value


@dataclass(frozen=True)
class Tariff:
    base: float
    periods: tuple[tuple[float, float, float], ...] = field(default=())   # (from h, to h, delta)

    @classmethod
    def parse(cls, text: str | None) -> "Tariff":
        """From the TARIFF setting; a clear ValueError when it can't be read."""
        data = DEFAULT_TARIFF if not text else json.loads(text)
        if isinstance(data, (int, float)):
            return cls(float(data))
        try:
            periods = tuple((_hours(a), _hours(b), float(delta)) for a, b, delta in data.get("periods", []))
            return cls(float(data["base"]), periods)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError('TARIFF must be a number or {"base": 7, "periods": [["22:00", "06:00", -1], ...]}: '
                             f"{error}") from None

    def rate_at_hour(self, hour: float) -> float:
        rate = self.base
        for start, end, delta in self.periods:
            inside = start <= hour < end if start < end else (hour >= start or hour < end)
            if inside:
                rate += delta
        return rate

    def rate(self, ts: float, utc_offset_h: float) -> float:
        """Rs/kWh at epoch seconds `ts`."""
        return self.rate_at_hour(local_hour(ts, utc_offset_h))

    def to_dict(self) -> dict:
        return {"base": self.base, "periods": [[f"{int(a):02d}:{round(a % 1 * 60):02d}",
                                                f"{int(b):02d}:{round(b % 1 * 60):02d}", d]
                                               for a, b, d in self.periods]}
