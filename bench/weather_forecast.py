"""Demand forecast error with and without weather covariates, on simulated data.

A weather file in Open-Meteo's answer shape is generated (hot and cool spells,
afternoon storms). A simulated city, whose zone demand responds to that same
weather (hotter: more; rain: less), feeds the forecaster twice: plain, and
with the weather hours as covariates (forecast hours with a forecast's error,
replaced by the observed hour once it has passed). The file is read by the
real Open-Meteo adapter. Prints the one-hour-ahead MAPE of each, after a
warm-up week. Runs in a few seconds; no network.

    python -m bench.weather_forecast [--days 35] [--seed 7]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.adapters.network_files import load_network  # noqa: E402
from app.adapters.sources.config import parse_sources  # noqa: E402
from app.adapters.sources.open_meteo import OpenMeteoAdapter  # noqa: E402
from app.services.forecast import SLOT_S, DemandForecaster  # noqa: E402
from app.services.network import Network  # noqa: E402
from app.services.weather_effect import T_REF_C, WeatherEffect  # noqa: E402
from app.config import BUNDLED_NETWORK  # noqa: E402

# How the simulated city's demand answers the weather (per °C above T_REF, per mm of rain).
TEMP_EFFECT = 0.025
RAIN_EFFECT = -0.06
NOISE = 0.015                 # lognormal noise on each reading
READINGS_PER_SLOT = 3
WARMUP_DAYS = 7
FORECAST_TEMP_ERROR_C = 1.0   # a day-ahead forecast's typical temperature error
FORECAST_RAIN_HIT = 0.7       # share of rain hours a forecast gets right


def diurnal(hour: float) -> float:
    """Bengaluru-like demand shape: morning and evening peaks (mean about 1)."""
    return 1.0 + 0.35 * math.exp(-((hour - 7) / 1.5) ** 2) + 0.25 * math.exp(-((hour - 19) / 2) ** 2) \
        - 0.3 * math.exp(-((hour - 3) / 2.5) ** 2)


def weather_file(path: Path, start: float, days: int, rng: random.Random) -> None:
    times, temps, rain = [], [], []
    spell = 0.0
    for k in range(days * 24):
        ts = start + k * 3600
        hour = (ts / 3600 + 5.5) % 24
        if k % 24 == 0:
            spell = 0.7 * spell + rng.gauss(0, 2.0)       # multi-day hot and cool spells
        temperature = 26 + spell + 5 * math.sin((hour - 9) / 24 * 2 * math.pi)
        storm = 14 <= hour < 19 and rng.random() < 0.25
        times.append(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ts)))
        temps.append(round(temperature, 1))
        rain.append(round(rng.uniform(1, 8), 1) if storm else 0.0)
    path.write_text(json.dumps({"latitude": 12.97, "longitude": 77.59, "utc_offset_seconds": 0,
                                "timezone": "GMT", "hourly_units": {"time": "iso8601", "temperature_2m": "°C",
                                                                    "precipitation": "mm"},
                                "hourly": {"time": times, "temperature_2m": temps, "precipitation": rain}}))


class FileAnswer:
    """Hands the adapter the weather file as its HTTP answer."""

    def __init__(self, path: Path):
        self.data = json.loads(path.read_text())
        self.timeout = (1, 1)

    def get_json(self, url, params=None, conditional=True):
        return self.data


def run(days: int, seed: int) -> dict:
    rng = random.Random(seed)
    start = (int(time.time()) // 86400 - days - 1) * 86400
    folder = Path(tempfile.mkdtemp(prefix="bhs-weather-"))
    path = folder / "open_meteo.json"
    weather_file(path, start, days, rng)
    config = parse_sources({"sources": [{"id": "weather", "type": "open_meteo", "url": "http://127.0.0.1:1",
                                         "interval_s": 3600, "latitude": 12.97, "longitude": 77.59,
                                         "node_id": "WX_BENGALURU"}]})[0]
    hours = OpenMeteoAdapter(config).fetch(FileAnswer(path), now=start + days * 86400).weather
    by_hour = {int(h.ts // 3600): h for h in hours}
    zones = {z.id: z.demand for z in load_network(BUNDLED_NETWORK).of_kind("zone")}

    plain = DemandForecaster(list(zones))
    effect = WeatherEffect()
    covariate = DemandForecaster(list(zones), weather=effect)
    forecast_rng = random.Random(seed + 1)
    slots = days * 96
    for slot in range(slots):
        t0 = start + slot * SLOT_S
        if slot % 4 == 0:
            # Each hour: the hours passed as observed, the next day as a (noisy) forecast.
            now_hour = int(t0 // 3600)
            feed = [by_hour[now_hour]] if now_hour in by_hour else []
            for ahead in range(1, 25):
                h = by_hour.get(now_hour + ahead)
                if h is not None:
                    rain = h.precipitation_mm if forecast_rng.random() < FORECAST_RAIN_HIT else 0.0
                    feed.append((h.ts, h.temperature_c + forecast_rng.gauss(0, FORECAST_TEMP_ERROR_C), rain))
            effect.observe_weather(feed)
        for k in range(READINGS_PER_SLOT):
            ts = t0 + k * SLOT_S / READINGS_PER_SLOT
            h = by_hour[int(math.ceil(ts / 3600))] if int(math.ceil(ts / 3600)) in by_hour else by_hour[int(ts // 3600)]
            local_hour = (ts / 3600 + 5.5) % 24
            response = math.exp(TEMP_EFFECT * (h.temperature_c - T_REF_C) + RAIN_EFFECT * (h.precipitation_mm or 0))
            for zone, base in zones.items():
                value = base * diurnal(local_hour) * response * math.exp(rng.gauss(0, NOISE))
                plain.observe(zone, ts, value)
                covariate.observe(zone, ts, value)

    def mape(forecaster: DemandForecaster) -> float:
        errors = []
        for state in forecaster.zones.values():
            scored = state.errors
            errors += scored[WARMUP_DAYS * 96:]
        return 100 * sum(errors) / len(errors)

    naive = [e for s in plain.zones.values() for e in s.naive_errors[WARMUP_DAYS * 96:]]
    first = next(iter(zones))
    return {"days": days, "zones": len(zones), "slots_scored": len(plain.zones[first].errors[WARMUP_DAYS * 96:]),
            "mape_without": mape(plain), "mape_with": mape(covariate),
            "seasonal_naive": 100 * sum(naive) / len(naive),
            "learned": effect.coefficients(first), "true": (TEMP_EFFECT, RAIN_EFFECT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.days, args.seed)
    print(f"demand forecast, 1 h ahead, {result['zones']} zones x {result['slots_scored']} slots "
          f"scored after a {WARMUP_DAYS}-day warm-up ({result['days']} simulated days, seed {args.seed})")
    print(f"  MAPE without weather covariates: {result['mape_without']:.2f} %")
    print(f"  MAPE with weather covariates:    {result['mape_with']:.2f} %")
    print(f"  seasonal naive (same slot a day earlier): {result['seasonal_naive']:.2f} %")
    b_t, b_r = result["learned"]
    print(f"  learned effect (zone 1): {b_t:+.4f}/°C, {b_r:+.4f}/mm  (simulated: {TEMP_EFFECT:+.4f}/°C, "
          f"{RAIN_EFFECT:+.4f}/mm)")
    print(f"  ran in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
