"""Threshold rules: which limit a value breaches, when it is back for good, and the alert's words."""
from __future__ import annotations

import pytest

from app import wire
from app.services.alerts import AlertBook
from app.services.thresholds import Rule, ThresholdMonitor, rule_for_metric, rules_for
from tests.unit.networks import network, node
from testkit.readings import reading


def sensors_network(*sensors):
    return network([node("Z", "zone", name="South", demand=10, priority=1), node("R", "reservoir", volume=5,
                                                                      min_volume=0, max_volume=10)],
                   [], sensors=[{"node": "Z", **s} for s in sensors])


def test_level_and_pressure_bands_from_the_normal_range():
    rules = rules_for(sensors_network(
        {"id": "Z.p", "metric": "pressure", "normal": [12, 30]},
        {"id": "R.level", "metric": "level", "normal": [50, 90]},
        {"id": "R.low", "metric": "level", "normal": [10, 95]},
        {"id": "Z.flow", "metric": "flow"},                                # no rule at all
        {"id": "Z.level", "metric": "level"},                              # no normal range: none either
        {"id": "Z.flow2", "metric": "flow", "thresholds": {"critical": [None, 500]}},
    ))
    assert rules["Z.p"] == Rule(warning=(12 + 0.1 * 18, 30), critical=(12, 30 + 0.5 * 18))
    assert rules["R.level"] == Rule(warning=(50, 90), critical=(30, None))    # 50 - 0.5 x 40
    assert rules["R.low"].critical == (0.0, None)                            # never below empty
    assert rules["R.low"].severity(0.0) == "warning" and rules["R.low"].severity(-0.5) == "critical"
    assert rules["Z.flow2"] == Rule(warning=(None, None), critical=(None, 500))
    assert rules["Z.flow2"].severity(500.1) == "critical" and rules["Z.flow2"].severity(499) is None
    assert set(rules) == {"Z.p", "R.level", "R.low", "Z.flow2"}


def test_an_override_replaces_one_band_and_keeps_the_other():
    rules = rules_for(sensors_network({"id": "Z.ph", "metric": "ph", "thresholds": {"warning": [6.8, 8.2]}},
                                      {"id": "Z.ph2", "metric": "ph", "thresholds": {"critical": [4, 11]}}))
    assert rules["Z.ph"] == Rule(warning=(6.8, 8.2), critical=(5.0, 10.0))
    assert rules["Z.ph2"] == Rule(warning=(6.0, 9.0), critical=(4, 11))


@pytest.mark.parametrize("metric, value, severity, limit", [
    ("ph", 4.9, "critical", 5.0), ("ph", 10.2, "critical", 10.0),
    ("ph", 5.5, "warning", 6.0), ("ph", 9.5, "warning", 9.0),
    ("do", 3.0, "warning", 4.0), ("bod", 6.0, "warning", 5.0), ("do", 1.0, "critical", 2.0),
])
def test_the_limit_a_value_breached(metric, value, severity, limit):
    rule = rule_for_metric(metric)
    assert rule.severity(value) == severity and rule.breached_limit(value, severity) == limit


def test_a_value_exactly_at_the_margin_is_back_inside():
    rule = Rule(warning=(0.0, 50.0), critical=(None, None))             # margin 1.0, exact in binary
    assert rule.comfortably_inside(1.0) and rule.comfortably_inside(49.0)
    assert not rule.comfortably_inside(0.99) and not rule.comfortably_inside(49.01)


@pytest.mark.parametrize("metric, inside, not_yet", [
    ("ph", [6.07, 8.93, 7.5], [6.05, 8.95, 6.0, 9.0]),     # 2 % of the 6-9 band
    ("do", [4.09, 12.0], [4.07, 4.0]),                      # one-sided: 2 % of its limit
    ("bod", [4.89, 0.0], [4.91, 5.0]),
])
def test_back_inside_the_warning_band_by_a_margin(metric, inside, not_yet):
    rule = rule_for_metric(metric)
    assert [rule.comfortably_inside(v) for v in inside] == [True] * len(inside)
    assert [rule.comfortably_inside(v) for v in not_yet] == [False] * len(not_yet)
    assert Rule((None, None), (None, 500)).comfortably_inside(499.0)
    assert rule_for_metric("flow") is None


class Monitor:
    def __init__(self, clear_after_s=30.0):
        net = sensors_network({"id": "Z.ph", "metric": "ph", "unit": "pH"},
                              {"id": "Z.p", "metric": "pressure", "unit": "m", "normal": [12, 30]},
                              {"id": "Z.flow", "metric": "flow", "unit": "MLD"})
        self.events = []
        self.alerts = AlertBook(self.events.append, clock=lambda: 0.0)
        self.monitor = ThresholdMonitor(net, self.alerts, clear_after_s)

    def send(self, sensor, metric, value, ts, node_id="Z", unit=None, **extra):
        self.monitor.observe([reading(sensor, value, ts, metric=metric, node_id=node_id, unit=unit, **extra)])

    def open(self):
        return {(a.subject, a.condition): wire.alert(a) for a in self.alerts.open_alerts()}


def test_the_alert_says_what_breached_which_limit_where():
    m = Monitor()
    m.send("Z.ph", "ph", 9.2, 0, unit="pH")
    m.send("Z.p", "pressure", 11.5, 0, unit="m")
    m.send("X.turbidity", "turbidity", 12, 0, node_id=None)              # unregistered: metric defaults
    m.send("Z.flow", "flow", 1e6, 0, unit="MLD")                        # registered, no rule: nothing
    alerts = m.open()
    assert set(alerts) == {("Z.ph", "quality_ph"), ("Z.p", "range_pressure"), ("X.turbidity", "quality_turbidity")}
    ph = alerts[("Z.ph", "quality_ph")]
    assert (ph["message"], ph["severity"], ph["sensor_id"], ph["node_id"], ph["metric"], ph["value"],
            ph["threshold"]) == ("ph 9.2 pH above the warning limit 9 at South", "warning", "Z.ph", "Z", "ph",
                                 9.2, 9.0)
    assert alerts[("Z.p", "range_pressure")]["message"] == "pressure 11.5 m below the critical limit 12 at South"
    assert alerts[("X.turbidity", "quality_turbidity")]["message"] == "turbidity 12 above the warning limit 10"


def test_a_bad_quality_reading_is_a_sensor_fault_not_water_quality():
    m = Monitor()
    m.send("Z.ph", "ph", 14.0, 0, quality="bad")
    assert m.open() == {}
    m.send("Z.ph", "ph", 9.5, 1, quality="suspect")
    assert set(m.open()) == {("Z.ph", "quality_ph")}


def test_clearing_waits_for_a_whole_window_comfortably_inside():
    m = Monitor(clear_after_s=30)
    m.send("Z.ph", "ph", 9.2, 0)
    m.send("Z.ph", "ph", 8.0, 10)          # inside: the window starts
    m.send("Z.ph", "ph", 8.95, 20)         # inside the band but within its margin: starts again
    m.send("Z.ph", "ph", 8.0, 30)
    m.send("Z.ph", "ph", 8.0, 59)
    assert m.open()
    m.send("Z.ph", "ph", 8.0, 60)          # 30 s comfortably inside
    assert m.open() == {}
    m.send("Z.ph", "ph", 9.3, 100)         # a new breach, then the window starts afresh
    m.send("Z.ph", "ph", 8.0, 110)
    m.send("Z.ph", "ph", 9.1, 115)         # breached again inside the window
    m.send("Z.ph", "ph", 8.0, 120)
    m.send("Z.ph", "ph", 8.0, 149)
    assert m.open()
    m.send("Z.ph", "ph", 8.0, 150)
    assert m.open() == {}


def test_a_value_in_range_with_no_alert_open_changes_nothing():
    m = Monitor(clear_after_s=0)
    m.send("Z.ph", "ph", 7.0, 0)
    m.send("Z.ph", "ph", 9.5, 1)
    assert m.open()[("Z.ph", "quality_ph")]["count"] == 1
    m.send("Z.ph", "ph", 7.0, 2)           # clear_after_s 0: the first comfortable value clears
    assert m.open() == {}


def test_an_alarm_another_instance_raised_waits_a_whole_window_here_too():
    # A cluster's leader clears an alarm, a second instance raises it again while it leads
    # (this one adopts it), then this one leads again: its clearing window starts afresh.
    m = Monitor(clear_after_s=30)
    m.send("Z.ph", "ph", 9.2, 0)
    m.send("Z.ph", "ph", 8.0, 10)
    m.send("Z.ph", "ph", 8.0, 40)          # cleared here, 30 s comfortably inside
    assert m.open() == {}
    peer = AlertBook(lambda event: None, clock=lambda: 100.0)
    m.alerts.adopt(wire.alert(peer.raise_("Z.ph", "quality_ph", "warning", "ph 9.4 pH above the warning limit 9",
                                          sensor_id="Z.ph", node_id="Z", metric="ph", value=9.4,
                                          threshold=9.0)))
    m.send("Z.ph", "ph", 8.0, 200)         # comfortably inside: the window starts now
    assert set(m.open()) == {("Z.ph", "quality_ph")}
    m.send("Z.ph", "ph", 8.0, 230)
    assert m.open() == {}
