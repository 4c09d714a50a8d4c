"""Threshold rules per metric, and the alerts they raise and clear.

A rule is data: a warning band and a critical band, each `[low, high]` with
either end open (None). A value strictly outside a band breaches it, so a
value exactly on a limit is still in range. Quality defaults come from
DOMAIN.md (operational thresholds; free chlorine per IS 10500); level and
pressure come from each sensor's normal range in the network model, whose
pressure floor is the service minimum (below it: critical); any
sensor may override its rule with `thresholds` in the network file.

Against flapping: an alert is raised at the first breach (safety first) but
cleared only after the value has stayed back inside the warning band, by a
margin, for `clear_after_s` of reading time (the clock stamps readings taken
without a timestamp, so a simulated clock speeds the hold up with everything else). One alert per (sensor, condition): repeats
update it and escalate warning to critical, never duplicate it.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.domain.records import Reading
from app.services.alerts import AlertBook
from app.services.network import Network

Band = tuple[float | None, float | None]

# DOMAIN.md: operational thresholds (warning / critical), IS 10500 for chlorine.
DEFAULT_RULES: dict[str, dict[str, Band]] = {
    "ph": {"warning": (6.0, 9.0), "critical": (5.0, 10.0)},
    "do": {"warning": (4.0, None), "critical": (2.0, None)},
    "bod": {"warning": (None, 5.0), "critical": (None, 10.0)},
    "fc": {"warning": (None, 2500.0), "critical": (None, 10000.0)},
    "turbidity": {"warning": (None, 10.0), "critical": (None, 50.0)},
    # Free residual chlorine 0.2-1.0 mg/L; below 0.1 there is no protection
    # left, above 2.0 taste complaints and over-dosing (our synthesis).
    "chlorine": {"warning": (0.2, 1.0), "critical": (0.1, 2.0)},
}
# Level and pressure: the sensor's normal range is the warning band; the
# critical band lies this share of the range's span beyond it ...
CRITICAL_SPAN_SHARE = 0.5
# ... except below a pressure range's floor, which is the service minimum
# (DOMAIN.md: 7/12/17 m at the connection): under it customers lose supply,
# so it is critical at once; a warning comes first, this share of the span above it.
PRESSURE_WARNING_HEADROOM_SHARE = 0.1
# Back inside the warning band by this share of its span before clearing counts.
CLEAR_MARGIN_SHARE = 0.02


@dataclass(frozen=True)
class Rule:
    warning: Band
    critical: Band

    def severity(self, value: float) -> str | None:
        if _outside(value, self.critical):
            return "critical"
        if _outside(value, self.warning):
            return "warning"
        return None

    def breached_limit(self, value: float, severity: str) -> float | None:
        low, high = self.critical if severity == "critical" else self.warning
        if low is not None and value < low:
            return low
        return high

    def comfortably_inside(self, value: float) -> bool:
        low, high = self.warning
        span = (high - low) if low is not None and high is not None else abs(low or high or 1.0)
        margin = CLEAR_MARGIN_SHARE * span
        return ((low is None or value >= low + margin) and (high is None or value <= high - margin))


def _outside(value: float, band: Band) -> bool:
    low, high = band
    return (low is not None and value < low) or (high is not None and value > high)


def _band(data, fallback: Band) -> Band:
    if data is None:
        return fallback
    return (data[0], data[1])


def rules_for(network: Network) -> dict[str, Rule]:
    """The rule of every registered sensor that has one."""
    rules = {}
    for sensor in network.sensors.values():
        base = DEFAULT_RULES.get(sensor.metric)
        if base is None and sensor.metric in ("level", "pressure") and sensor.normal:
            low, high = sensor.normal
            extra = CRITICAL_SPAN_SHARE * (high - low)
            if sensor.metric == "pressure":
                base = {"warning": (low + PRESSURE_WARNING_HEADROOM_SHARE * (high - low), high),
                        "critical": (low, high + extra)}
            else:
                base = {"warning": (low, high), "critical": (max(0.0, low - extra), None)}
        override = sensor.thresholds or {}
        if base is None and not override:
            continue
        base = base or {"warning": (None, None), "critical": (None, None)}
        rules[sensor.id] = Rule(_band(override.get("warning"), base["warning"]),
                                _band(override.get("critical"), base["critical"]))
    return rules


def rule_for_metric(metric: str) -> Rule | None:
    base = DEFAULT_RULES.get(metric)
    return Rule(base["warning"], base["critical"]) if base else None


class ThresholdMonitor:
    """Pipeline hook: evaluates each reading against its rule and drives alerts."""

    def __init__(self, network: Network, alerts: AlertBook, clear_after_s: float):
        self.network = network
        self.alerts = alerts
        self.clear_after_s = clear_after_s
        self.rules = rules_for(network)
        self._in_range_since: dict[str, float] = {}

    def rule(self, record: Reading) -> Rule | None:
        rule = self.rules.get(record.sensor_id)
        if rule is None and record.sensor_id not in self.network.sensors:
            rule = rule_for_metric(record.metric)   # unregistered sensors: metric defaults
        return rule

    def observe(self, records: list[Reading]) -> None:
        for record in records:
            if record.quality == "bad":
                continue   # a physically impossible value is a sensor fault, not water quality
            rule = self.rule(record)
            if rule is not None:
                self._evaluate(record, rule)

    def _evaluate(self, record: Reading, rule: Rule) -> None:
        sensor_id, value = record.sensor_id, record.value
        condition = f"quality_{record.metric}" if record.metric in DEFAULT_RULES else f"range_{record.metric}"
        severity = rule.severity(value)
        if severity is not None:
            self._in_range_since.pop(sensor_id, None)
            limit = rule.breached_limit(value, severity)
            direction = "below" if limit is not None and value < limit else "above"
            node = self.network.nodes.get(record.node_id or "")
            where = f" at {node.name}" if node else ""
            self.alerts.raise_(
                sensor_id, condition, severity,
                f"{record.metric} {value:g}{' ' + record.unit if record.unit else ''} "
                f"{direction} the {severity} limit {limit:g}{where}",
                sensor_id=sensor_id, node_id=record.node_id, metric=record.metric,
                value=value, threshold=limit)
            return
        if not self.alerts.is_open(sensor_id, condition):
            return
        if not rule.comfortably_inside(value):
            self._in_range_since.pop(sensor_id, None)
            return
        since = self._in_range_since.setdefault(sensor_id, record.ts)
        if record.ts - since >= self.clear_after_s:
            self._in_range_since.pop(sensor_id, None)
            self.alerts.clear(sensor_id, condition)
