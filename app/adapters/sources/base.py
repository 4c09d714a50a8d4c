"""What every source type hands the scheduler: observations and counted drops."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from app.adapters.sources.http import SourceHttp


class Observation(NamedTuple):
    node_id: str
    metric: str
    value: float
    ts: float                 # when it was observed (epoch seconds), not when fetched
    unit: str | None = None


class WeatherHour(NamedTuple):
    ts: float
    temperature_c: float | None
    precipitation_mm: float | None


@dataclass
class FetchResult:
    observations: list[Observation] = field(default_factory=list)
    fetched: int = 0                                   # records the server gave us
    dropped: Counter = field(default_factory=Counter)  # reason -> records
    warnings: list[str] = field(default_factory=list)
    not_modified: bool = False
    skipped: int = 0                                   # scenes already processed (stac)
    # Forecast hours (open_meteo): covariates of the demand forecast.
    weather: list[WeatherHour] = field(default_factory=list)
    # Scenes read (stac), so they are not read again.
    scenes: list[str] = field(default_factory=list)


class SourceAdapter(Protocol):
    def fetch(self, http: SourceHttp, now: float) -> FetchResult:
        """One fetch. Raise FetchFailed (never anything else) when it gave nothing usable."""


def number(text) -> float | None:
    """A value as agencies send it: a number, or a string with "NA", "-" or "" for missing."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str):
        cleaned = text.strip().replace(",", "")
        if cleaned.upper() in MISSING_MARKS:
            return None
        value = float(cleaned)          # ValueError: the caller counts it
    else:
        return None
    return value if value == value and abs(value) != float("inf") else None


MISSING_MARKS = frozenset({"", "NA", "N/A", "-", "--", "NULL", "NONE", "NAN", "BDL"})
