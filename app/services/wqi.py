"""The CPCB Water Quality Index (NSF-based, as used by Indian boards).

WQI = sum(w_i x I_i) over DO (% saturation), fecal coliform, pH and BOD, each
sub-index clipped to 0-100 (formula and bands in DOMAIN.md). A station that
measures only some of the four gets the weighted mean of those it has, and
says which were used. Worked example (DOMAIN.md): BOD 2.2, DO 5.5, FC 6,
pH 7.6 gives about 83.2.
"""
from __future__ import annotations

import math

from app.domain.records import Reading

WEIGHTS = {"do": 0.31, "fc": 0.28, "ph": 0.22, "bod": 0.19}
# DO saturation taken as 6.5 mg/L (DOMAIN.md: x = DO / 6.5 x 100).
DO_SATURATION_MG_L = 6.5
# A station needs at least this many of the four parameters for an index.
MIN_PARAMETERS = 2
BANDS = ((63.0, "good to excellent"), (50.0, "medium to good"), (38.0, "bad"), (0.0, "bad to very bad"))


def _clip(value: float) -> float:
    return max(0.0, min(100.0, value))


def sub_index(metric: str, x: float) -> float:
    if metric == "do":
        sat = x / DO_SATURATION_MG_L * 100
        if sat <= 40:
            return _clip(0.18 + 0.66 * sat)
        if sat <= 100:
            return _clip(-13.55 + 1.17 * sat)
        # Above 140% the table stops; its last line's decline is carried on.
        return _clip(163.34 - 0.62 * sat)
    if metric == "fc":
        if x <= 1:
            return 97.2
        if x <= 1e3:
            return _clip(97.2 - 26.6 * math.log10(x))
        if x <= 1e5:
            return _clip(42.33 - 7.75 * math.log10(x))
        return 2.0
    if metric == "ph":
        if 2 <= x < 5:
            return _clip(16.1 + 7.35 * x)
        if 5 <= x < 7.3:
            return _clip(-142.67 + 33.5 * x)
        if 7.3 <= x < 10:
            return _clip(316.96 - 29.85 * x)
        if 10 <= x <= 12:
            return _clip(96.17 - 8 * x)
        return 0.0
    if metric == "bod":
        if x <= 10:
            return _clip(96.67 - 7 * x)
        if x <= 30:
            return _clip(38.9 - 1.23 * x)
        return 2.0
    raise ValueError(f"no WQI sub-index for {metric}")


def band(wqi: float) -> str:
    return next(name for floor, name in BANDS if wqi >= floor)


def water_quality_index(parameters: dict[str, float]) -> float | None:
    used = {m: v for m, v in parameters.items() if m in WEIGHTS}
    if len(used) < MIN_PARAMETERS:
        return None
    total = sum(WEIGHTS[m] for m in used)
    return round(sum(WEIGHTS[m] * sub_index(m, v) for m, v in used.items()) / total, 1)


def station_indices(latest_by_node: dict[str, dict[str, float]]) -> list[dict]:
    """`[{"node_id", "wqi", "band", "parameters"}]` for every node with enough parameters."""
    stations = []
    for node_id, parameters in sorted(latest_by_node.items()):
        used = {m: v for m, v in parameters.items() if m in WEIGHTS}
        wqi = water_quality_index(used)
        if wqi is not None:
            stations.append({"node_id": node_id, "wqi": wqi, "band": band(wqi), "parameters": used,
                             "complete": len(used) == len(WEIGHTS)})
    return stations


class WqiStations:
    """Which sensors give each station's quality parameters: the network's and ad-hoc ones.

    Seeded from the network model, then learned from every live reading of a
    WQI metric that names a `node_id`, so a station known only from its
    readings (an agency's monitoring station, a field kit) gets an index too.
    """

    def __init__(self, known: dict[str, dict[str, str]] | None = None):
        self._sensors: dict[str, dict[str, str]] = {node: dict(m) for node, m in (known or {}).items()}

    def observe(self, records: list[Reading]) -> None:
        """Pipeline hook."""
        for record in records:
            metric = record.metric
            if metric in WEIGHTS and record.node_id:
                self._sensors.setdefault(record.node_id, {})[metric] = record.sensor_id

    def indices(self, latest) -> list[dict]:
        """WQI of every station from `latest(sensor_id)`; bad-quality readings are left out."""
        by_node: dict[str, dict[str, float]] = {}
        for node, sensors in list(self._sensors.items()):
            for metric, sensor_id in list(sensors.items()):
                record = latest(sensor_id)
                if record is not None and record.quality != "bad":
                    by_node.setdefault(node, {})[metric] = record.value
        return station_indices(by_node)
