"""Thresholds at every boundary, hysteresis, WQI, data-quality flags, forecasts."""
import math
import random

import pytest

from app.adapters.network_files import load_network
from app.config import BUNDLED_NETWORK
from app.services.alerts import AlertBook
from app.services.data_quality import FLATLINE_COUNT, DataQuality
from app.services.forecast import SLOT_S, DemandForecaster
from app.services.network import Network
from app.services.thresholds import ThresholdMonitor, rule_for_metric, rules_for
from app.services.wqi import band, sub_index, water_quality_index
from testkit.readings import reading as record


@pytest.mark.parametrize("metric, value, expected", [
    ("ph", 6.0, None), ("ph", 5.99, "warning"), ("ph", 9.0, None), ("ph", 9.01, "warning"),
    ("ph", 5.0, "warning"), ("ph", 4.99, "critical"), ("ph", 10.0, "warning"), ("ph", 10.01, "critical"),
    ("do", 4.0, None), ("do", 3.99, "warning"), ("do", 2.0, "warning"), ("do", 1.99, "critical"),
    ("bod", 5.0, None), ("bod", 5.01, "warning"), ("bod", 10.0, "warning"), ("bod", 10.01, "critical"),
    ("fc", 2500, None), ("fc", 2501, "warning"), ("fc", 10000, "warning"), ("fc", 10001, "critical"),
    ("turbidity", 10, None), ("turbidity", 10.1, "warning"), ("turbidity", 50, "warning"),
    ("turbidity", 50.1, "critical"),
    ("chlorine", 0.2, None), ("chlorine", 0.19, "warning"), ("chlorine", 1.0, None),
    ("chlorine", 1.01, "warning"), ("chlorine", 0.09, "critical"), ("chlorine", 2.01, "critical"),
])
def test_threshold_boundaries(metric, value, expected):
    assert rule_for_metric(metric).severity(value) == expected


def test_level_and_pressure_rules_come_from_the_network_and_can_be_overridden():
    net = load_network(BUNDLED_NETWORK)
    rules = rules_for(net)
    pressure = rules["Z_SOUTH.pressure_1"]            # normal 12-30 m
    # The floor is the service minimum: below it is critical (5.7 m against 12 m is no mere warning).
    assert pressure.severity(14.0) is None and pressure.severity(13.7) == "warning"   # 12 + 0.1 x 18
    assert pressure.severity(12.0) == "warning" and pressure.severity(11.9) == "critical"
    assert pressure.severity(5.7) == "critical"
    level = rules["GLR_CJF.level"]                        # normal 10-95 %
    assert level.severity(9.9) == "warning" and level.severity(100) == "warning"
    net.sensors["Z_SOUTH.ph"].thresholds = {"warning": [6.8, 8.2]}
    assert rules_for(net)["Z_SOUTH.ph"].severity(6.7) == "warning"


class Recorder:
    def __init__(self):
        self.events, self.records = [], []


def monitor(clear_after_s=30.0):
    rec = Recorder()
    alerts = AlertBook(lambda event: rec.events.append(event.alert), clock=lambda: 0.0)
    return ThresholdMonitor(load_network(BUNDLED_NETWORK), alerts, clear_after_s), alerts, rec


def reading(value, ts, sensor="Z_SOUTH.ph"):
    return record(sensor, value, ts, metric="ph", unit="pH", node_id="Z_SOUTH")


def test_a_value_oscillating_on_a_threshold_raises_one_alert():
    mon, alerts, rec = monitor()
    for k in range(60):                                  # 5 minutes around pH 9.0
        mon.observe([reading(9.02 if k % 2 else 8.99, k * 5.0)])
    assert len(alerts.open_alerts()) == 1
    assert [e.state for e in rec.events] == ["active"]
    assert alerts.open_alerts()[0].count == 30


def test_lifecycle_escalates_and_clears_after_the_window():
    mon, alerts, rec = monitor(clear_after_s=30)
    mon.observe([reading(9.2, 0)])
    mon.observe([reading(10.5, 5)])                      # escalates within the same alert
    [alert] = alerts.open_alerts()
    assert alert.severity == "critical" and alert.threshold == 10.0
    alerts.acknowledge(alert.id, "ops")
    mon.observe([reading(7.5, 10)])
    mon.observe([reading(7.5, 35)])                      # back in range for 25 s: not yet
    assert alerts.is_open("Z_SOUTH.ph", "quality_ph")
    mon.observe([reading(7.5, 41)])                      # 31 s: cleared
    assert not alerts.is_open("Z_SOUTH.ph", "quality_ph")
    assert [e.state for e in rec.events] == ["active", "active", "acknowledged", "cleared"]


def test_wqi_matches_the_worked_example():
    assert water_quality_index({"bod": 2.2, "do": 5.5, "fc": 6, "ph": 7.6}) == pytest.approx(83.2, abs=0.5)
    assert band(83.2) == "good to excellent" and band(55) == "medium to good"
    assert band(40) == "bad" and band(20) == "bad to very bad"
    assert sub_index("fc", 2e5) == 2.0 and sub_index("ph", 13) == 0.0
    assert water_quality_index({"ph": 7.0}) is None     # one parameter is not an index


def test_jump_and_flatline_are_flagged():
    dq = DataQuality()
    rng = random.Random(1)
    flags = [dq.classify("s", "pressure", 24 + rng.gauss(0, 0.2))[0] for _ in range(30)]
    assert set(flags) == {"good"}
    flag, reason = dq.classify("s", "pressure", 60.0)
    assert flag == "suspect" and "jump" in reason
    # A real level shift stops being suspect once it dominates the window.
    shifted = [dq.classify("s", "pressure", 60 + rng.gauss(0, 0.2))[0] for _ in range(15)]
    assert shifted[-1] == "good"
    for _ in range(FLATLINE_COUNT):
        flag, reason = dq.classify("s3", "level", 42.0)
    assert flag == "suspect" and "flatline" in reason
    assert dq.classify("s4", "flow", 0.0)[0] == "good"      # stopped pumps read 0 honestly
    assert dq.classify("s5", "ph", 15.2)[0] == "bad"
    assert dq.classify("s6", "flow", -3)[0] == "bad"


def test_forecast_beats_seasonal_naive_on_a_diurnal_series():
    rng = random.Random(4)
    forecaster = DemandForecaster(["Z"])
    start = 1_767_225_600.0
    for minute in range(0, 6 * 24 * 60):                 # six days of a reading a minute
        t = start + minute * 60
        hour = (minute / 60) % 24
        day = minute // (24 * 60)
        # Demand steps up 12% from day 4 on: a level change seasonal-naive is slow to see.
        level = 300 * (1.12 if day >= 4 else 1.0)
        value = level * (0.7 + 0.5 * math.exp(-((hour - 7) / 2) ** 2) + 0.4 * math.exp(-((hour - 19) / 2.5) ** 2))
        forecaster.observe("Z", t, value * (1 + rng.gauss(0, 0.03)))
    state = forecaster.zones["Z"]
    mape, naive = state.mape()
    assert mape is not None and naive is not None
    assert mape < naive
    view = forecaster.view(start)
    steps = view["zones"][0]["steps"]
    assert len(steps) == 4 and steps[1]["t"] - steps[0]["t"] == SLOT_S
    assert all(s["demand"] > 0 for s in steps)
