"""Open-Meteo's forecast API: hourly temperature and rain at one point.

`GET {url}/v1/forecast?latitude=…&longitude=…&hourly=temperature_2m,precipitation&past_days=…`
answers `{"hourly": {"time": [...], "temperature_2m": [...], "precipitation": [...]},
"hourly_units": {...}, "utc_offset_seconds": 0}`. Hours up to now become readings
at the weather station node; every hour (observed and forecast) goes to the
demand forecast as covariates.
"""
from __future__ import annotations

from datetime import datetime, timezone

from app.adapters.sources.base import FetchResult, Observation, WeatherHour, number
from app.adapters.sources.config import OpenMeteoSource
from app.adapters.sources.http import FetchFailed, NotModified, SourceHttp

# Our metric for each hourly variable.
VARIABLES = {"temperature_2m": "temperature", "precipitation": "precipitation"}
DEFAULT_UNITS = {"temperature_2m": "°C", "precipitation": "mm"}


class OpenMeteoAdapter:
    def __init__(self, config: OpenMeteoSource):
        self.config = config

    def fetch(self, http: SourceHttp, now: float) -> FetchResult:
        c = self.config
        params = {"latitude": c.latitude, "longitude": c.longitude,
                  "hourly": ",".join(VARIABLES), "past_days": c.past_days,
                  "forecast_days": c.forecast_days, "timezone": "GMT"}
        result = FetchResult()
        try:
            answer = http.get_json(f"{c.base_url}/v1/forecast", params)
        except NotModified:
            result.not_modified = True
            return result
        if not isinstance(answer, dict):
            raise FetchFailed(f"unexpected answer: a JSON {type(answer).__name__}, not an object")
        if answer.get("error"):
            raise FetchFailed(f"Open-Meteo error: {str(answer.get('reason', ''))[:120]}")
        hourly = answer.get("hourly")
        if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
            raise FetchFailed("answer has no 'hourly.time'")
        times = hourly["time"]
        if not times:
            raise FetchFailed("empty answer: no hours")
        columns = {}
        for variable in VARIABLES:
            values = hourly.get(variable)
            if not isinstance(values, list):
                raise FetchFailed(f"answer has no 'hourly.{variable}'")
            if len(values) != len(times):
                raise FetchFailed(f"'hourly.{variable}' has {len(values)} values for {len(times)} hours "
                                  "(truncated answer)")
            columns[variable] = values
        units = answer.get("hourly_units") if isinstance(answer.get("hourly_units"), dict) else {}
        offset = answer.get("utc_offset_seconds") or 0
        offset = offset if isinstance(offset, (int, float)) else 0
        result.fetched = len(times)
        for index, text in enumerate(times):
            ts = _hour(text, offset)
            if ts is None:
                result.dropped["unreadable time"] += 1
                continue
            values = {}
            for variable, metric in VARIABLES.items():
                try:
                    values[variable] = number(columns[variable][index])
                except ValueError:
                    values[variable] = None
            result.weather.append(WeatherHour(ts, values["temperature_2m"], values["precipitation"]))
            if ts > now:
                continue                      # a forecast hour: covariate only
            for variable, metric in VARIABLES.items():
                if values[variable] is None:
                    result.dropped[f"{metric}: missing value"] += 1
                    continue
                unit = units.get(variable) or DEFAULT_UNITS[variable]
                result.observations.append(Observation(c.node_id, metric, values[variable], ts, unit))
        return result


def _hour(text, offset_s: float) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc).timestamp() - offset_s
    return moment.timestamp()
