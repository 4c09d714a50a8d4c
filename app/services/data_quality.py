"""Data quality: flag each reading `good`, `suspect` or `bad` before it is stored.

- bad: outside what the metric can physically be (a pH of 15, a negative flow);
- suspect: a sudden jump (robust z-score against the sensor's recent values,
  median and MAD, above JUMP_Z) or a flatline (the same value FLATLINE_COUNT
  times in a row, a stuck sensor).
Flagged readings are stored and shown, flagged; analysis may skip them.
"""
from __future__ import annotations

from collections import deque

from app.domain.records import BAD, GOOD, SENSOR_SOURCE, SUSPECT, Reading

# What each metric can physically be; outside it the sensor is faulty.
PHYSICAL_RANGE: dict[str, tuple[float, float]] = {
    "ph": (0.0, 14.0), "turbidity": (0.0, 4000.0), "do": (0.0, 25.0), "bod": (0.0, 1000.0),
    "fc": (0.0, 1e8), "chlorine": (0.0, 20.0), "level": (0.0, 100.0), "flow": (0.0, 100_000.0),
    "pressure": (-10.0, 1000.0), "tds": (0.0, 100_000.0), "conductivity": (0.0, 200_000.0),
    "temperature": (-20.0, 80.0), "power": (0.0, 10_000.0),
}
# Recent values kept per sensor for the jump test, and how many it needs first.
WINDOW = 20
MIN_HISTORY = 10
# Robust z-score above which a change is a jump. 1.4826 x MAD estimates the
# standard deviation for normal noise; 8 is well past noise, a jump not a drift.
JUMP_Z = 8.0
# The same value this many times in a row is a flatline (a stuck sensor).
FLATLINE_COUNT = 12
# A MAD of zero (a quiet sensor) is floored at this share of the median.
MIN_SCALE_SHARE = 0.01


class DataQuality:
    def __init__(self):
        self._recent: dict[str, deque] = {}
        self._repeats: dict[str, int] = {}

    def annotate(self, records: list[Reading]) -> None:
        """Set `quality` (and `quality_reason` when not good) on each record."""
        for record in records:
            source = record.source
            # Each source of a fused sensor is its own series for the jump and flatline tests.
            series = record.sensor_id if source == SENSOR_SOURCE else f"{record.sensor_id}|{source}"
            record.quality, reason = self.classify(series, record.metric, record.value)
            if reason:
                record.quality_reason = reason

    def classify(self, sensor_id: str, metric: str, value: float) -> tuple[str, str | None]:
        bounds = PHYSICAL_RANGE.get(metric)
        if bounds and not bounds[0] <= value <= bounds[1]:
            return BAD, f"outside the physical range {bounds[0]:g}..{bounds[1]:g} of {metric}"
        recent = self._recent.get(sensor_id)
        if recent is None:
            recent = self._recent[sensor_id] = deque(maxlen=WINDOW)
        repeats = self._repeats.get(sensor_id, 0) + 1 if recent and recent[-1] == value else 1
        self._repeats[sensor_id] = repeats
        verdict: tuple[str, str | None] = (GOOD, None)
        # Zero is exempt: stopped equipment honestly reads 0 flow or power.
        if repeats >= FLATLINE_COUNT and value != 0:
            verdict = (SUSPECT, f"flatline: the same value {repeats} times in a row")
        elif len(recent) >= MIN_HISTORY:
            ordered = sorted(recent)
            median = ordered[len(ordered) // 2]
            mad = sorted(abs(v - median) for v in ordered)[len(ordered) // 2]
            scale = max(1.4826 * mad, MIN_SCALE_SHARE * abs(median), 1e-9)
            z = abs(value - median) / scale
            if z > JUMP_Z:
                verdict = (SUSPECT, f"sudden jump: robust z-score {z:.0f} against recent values")
        # Every value joins the window, so a real level shift stops being
        # suspect once it makes up half the window.
        recent.append(value)
        return verdict
