"""The leak rule: inflow above expectation together with a pressure drop."""
import math

from app.services.leaks import LeakDetector


def feed(detector, zone, t, flow, pressure):
    findings = [detector.observe(zone, "flow", flow, t), detector.observe(zone, "pressure", pressure, t)]
    return [f for f in findings if f]


def test_burst_is_flagged_and_cleared_once():
    detector = LeakDetector(["Z"], excess_ratio=0.15, pressure_drop_ratio=0.10)
    findings = []
    for k in range(120):                       # 10 minutes of 5 s readings, steady
        findings += feed(detector, "Z", k * 5, 300 + math.sin(k) * 2, 24 + math.cos(k) * 0.2)
    assert findings == []
    for k in range(120, 180):                  # a burst: +25% inflow, -5 m pressure
        findings += feed(detector, "Z", k * 5, 375, 19)
    assert [f.suspected for f in findings] == [True]
    assert findings[0].excess > 0.2 and findings[0].drop > 0.15
    for k in range(180, 240):                  # repaired
        findings += feed(detector, "Z", k * 5, 300, 24)
    assert [f.suspected for f in findings] == [True, False]


def test_morning_ramp_is_not_a_leak():
    detector = LeakDetector(["Z"], excess_ratio=0.15, pressure_drop_ratio=0.10)
    findings = []
    for k in range(2000):                      # demand doubles over ~2.8 hours; pressure sags with it
        load = 0.5 + 0.5 * min(1.0, k / 2000)
        findings += feed(detector, "Z", k * 5, 300 * load * 2, 28 - 12 * load ** 2)
    assert findings == []


def test_either_signal_alone_is_not_a_leak():
    detector = LeakDetector(["Z"], excess_ratio=0.15, pressure_drop_ratio=0.10)
    findings = []
    for k in range(60):
        findings += feed(detector, "Z", k * 5, 300, 24)
    for k in range(60, 90):
        findings += feed(detector, "Z", k * 5, 400, 24)      # demand jump, pressure holds
    for k in range(90, 120):
        findings += feed(detector, "Z", k * 5, 300, 15)      # pressure dip, no extra inflow
    assert findings == []


def test_forecast_is_used_as_expected_consumption_when_present():
    detector = LeakDetector(["Z"], 0.15, 0.10, expected=lambda zone: 250.0)
    findings = []
    for k in range(60):
        findings += feed(detector, "Z", k * 5, 300, 24)      # 20% above the forecast ...
    findings += feed(detector, "Z", 305, 300, 20)          # ... and now pressure drops
    assert [f.suspected for f in findings] == [True] and findings[0].expected == 250.0
