"""Leak watch: a finding becomes an alert with its evidence in words, refreshed while it lasts."""
from __future__ import annotations

import pytest

from app.services.alerts import AlertBook
from app.services.leak_watch import LeakWatch, describe
from app.services.leaks import LeakDetector, LeakFinding, ZoneState
from tests.unit.networks import network, node
from tests.unit.test_leaks import WARM_ROUNDS, ZONES, feed, warmed, warmed_once  # noqa: F401 (fixtures)


def finding(**changes) -> LeakFinding:
    values = dict(zone="Z1", suspected=True, rule="balance", excess=0.1234, excess_mld=30.06,
                  inflow=330.44, expected=300.38, pressure=21.5, pressure_drop_m=4.26, duration_s=45.4)
    return LeakFinding(**{**values, **changes})


def test_the_evidence_in_one_sentence():
    assert describe(finding(), "Koramangala") == (
        "Koramangala: inflow 330 MLD is 30.1 MLD (12.3%) above the 300 MLD the city-wide move implies, "
        "while pressure is 4.3 m below what its flow explains, for 45 s")
    assert describe(finding(basis="own", night_flow=81.2), "K") == (
        "K: inflow 330 MLD is 30.1 MLD (12.3%) above the 300 MLD its own recent level implies "
        "(too few other zones report), while pressure is 4.3 m below what its flow explains, for 45 s; "
        "last minimum night flow 81 MLD")
    night = finding(rule="night", inflow=97.2, expected=81.0, excess=0.2, night_flow=97.2)
    assert describe(night, "K") == ("K: minimum night flow 97 MLD is 20% above the 81 MLD its usual "
                                    "night share implies")


def test_finding_evidence_is_rounded_for_people():
    assert finding(night_flow=81.3, night_excess=0.25).evidence() == {
        "rule": "balance", "basis": "city", "inflow_mld": 330.4, "expected_mld": 300.4, "excess_mld": 30.1,
        "excess_pct": 12.3, "pressure_m": 21.5, "pressure_drop_m": 4.26, "duration_s": 45,
        "night_flow_mld": 81.3, "night_excess_pct": 25.0}
    fine = finding(pressure=21.5349, pressure_drop_m=4.2649, night_flow=81.3449, night_excess=0.253449).evidence()
    assert (fine["pressure_m"], fine["pressure_drop_m"], fine["night_flow_mld"], fine["night_excess_pct"]) == (
        21.53, 4.26, 81.3, 25.3)
    assert finding().evidence()["night_flow_mld"] is None
    assert finding().evidence()["night_excess_pct"] is None


class Detector:
    """Findings on cue: what LeakWatch reads of the detector, and nothing else."""

    def __init__(self):
        self.zones = {"Z1": ZoneState(), "Z2": ZoneState()}
        self.next: list[LeakFinding] = []
        self.now: LeakFinding | None = None
        self.expect: float | None = None

    def observe(self, zone, metric, value, ts):
        found, self.next = self.next, []
        for f in found:
            state = self.zones[f.zone]
            state.suspected, state.rule, state.flow, state.finding = f.suspected, f.rule, f.inflow, f
        return found

    def current(self, zone, ts):
        return self.now

    def suspected(self):
        return {z: s.finding for z, s in self.zones.items() if s.suspected}

    def expected(self, zone, ts):
        return self.expect, "city"


@pytest.fixture
def watch():
    net = network([node("Z1", "zone", name="Koramangala", demand=300, priority=1), node("Z2", "zone", demand=100, priority=1),
                   node("J", "junction")], [])
    clock = type("Clock", (), {"now": 1000.0, "__call__": lambda self: self.now})()
    changes = []
    watch = LeakWatch(net, AlertBook(lambda event: None, clock=clock), Detector(),
                      on_change=lambda f, text: changes.append((f.zone, f.suspected, text)))
    watch.changes_ = changes
    return watch


def test_a_suspected_leak_raises_a_warning_with_its_evidence_and_its_clearing_clears_it(watch):
    watch.detector.next = [finding()]
    watch.observe("Z1", "flow", 330.4, 100.0)
    [alert] = watch.alerts.open_alerts()
    text = describe(finding(), "Koramangala")
    assert {k: getattr(alert, k) for k in ("subject", "condition", "severity", "message", "node_id", "sensor_id",
                                  "metric", "value", "threshold")} == {
        "subject": "Z1", "condition": "leak_suspected", "severity": "warning",
        "message": f"Leak suspected in {text}", "node_id": "Z1", "sensor_id": None, "metric": "flow",
        "value": 330.4, "threshold": 300.4}
    assert alert.evidence == finding().evidence()
    assert watch.changes_ == [("Z1", True, text)]
    watch.detector.next = [finding(suspected=False)]
    watch.observe("Z1", "flow", 300.0, 110.0)
    assert watch.alerts.open_alerts() == []
    assert [c[:2] for c in watch.changes_] == [("Z1", True), ("Z1", False)]


def test_a_standing_leak_alert_is_refreshed_every_30_s_of_reading_time(watch):
    watch.detector.next = [finding()]
    watch.observe("Z1", "flow", 330.4, 100.0)
    watch.detector.now = finding(inflow=345.26, expected=301.06, duration_s=75.0)
    watch.observe("Z1", "flow", 345.0, 129.9)
    assert watch.alerts.open_alerts()[0].count == 1           # not yet
    watch.observe("Z2", "flow", 100.0, 131.0)                     # another zone's reading: not its refresh
    assert watch.alerts.open_alerts()[0].count == 1
    watch.observe("Z1", "flow", 345.0, 130.0)                     # 30 s after it was raised
    [alert] = watch.alerts.open_alerts()
    assert alert.count == 2 and alert.value == 345.3 and alert.threshold == 301.1
    assert (alert.node_id, alert.sensor_id, alert.metric) == ("Z1", None, "flow")
    assert alert.message == "Leak suspected in " + describe(watch.detector.now, "Koramangala")
    assert alert.evidence["duration_s"] == 75
    watch.observe("Z1", "flow", 345.0, 159.0)
    assert watch.alerts.open_alerts()[0].count == 2
    watch.observe("Z1", "flow", 345.0, 160.0)
    assert watch.alerts.open_alerts()[0].count == 3
    assert len(watch.changes_) == 1                               # a refresh is no new transition


def test_a_standing_leak_alert_forgotten_by_a_demo_reset_comes_back_whole_at_its_refresh(watch):
    watch.detector.next = [finding()]
    watch.observe("Z1", "flow", 330.4, 100.0)
    watch.alerts.reset("operator")
    assert watch.alerts.open_alerts() == []
    watch.detector.now = finding(inflow=345.26, expected=301.06, duration_s=75.0)
    watch.observe("Z1", "flow", 345.0, 130.0)
    [alert] = watch.alerts.open_alerts()
    assert {k: getattr(alert, k) for k in ("subject", "condition", "severity", "message", "node_id", "sensor_id",
                                  "metric", "value", "threshold", "count")} == {
        "subject": "Z1", "condition": "leak_suspected", "severity": "warning",
        "message": "Leak suspected in " + describe(watch.detector.now, "Koramangala"), "node_id": "Z1",
        "sensor_id": None, "metric": "flow", "value": 345.3, "threshold": 301.1, "count": 1}
    assert alert.evidence == watch.detector.now.evidence()


def test_a_night_leak_clears_after_its_refresh_time_has_passed(watch):
    watch.detector.next = [finding(rule="night")]
    watch.observe("Z1", "flow", 330.4, 100.0)
    watch.observe("Z1", "flow", 330.4, 200.0)           # past the refresh time: a night leak has none
    watch.detector.next = [finding(rule="night", suspected=False)]
    watch.observe("Z1", "flow", 300.0, 300.0)
    assert watch.alerts.open_alerts() == []
    assert [c[:2] for c in watch.changes_] == [("Z1", True), ("Z1", False)]


def test_a_night_leak_is_not_refreshed_from_the_day_rule(watch):
    watch.detector.next = [finding(rule="night")]
    watch.observe("Z1", "flow", 330.4, 100.0)
    watch.detector.now = finding(inflow=999.0)
    watch.observe("Z1", "flow", 330.4, 200.0)
    assert watch.alerts.open_alerts()[0].count == 1
    watch.detector.zones["Z1"].rule = "balance"                    # and once dropped it stays dropped
    watch.observe("Z1", "flow", 330.4, 300.0)
    assert watch.alerts.open_alerts()[0].count == 1


def test_held_demand_is_what_the_city_implies_now_or_else_what_the_finding_said(watch):
    assert watch.held_demand(0.0) == {}
    watch.detector.next = [finding()]
    watch.observe("Z1", "flow", 330.4, 100.0)
    f = watch.detector.zones["Z1"].finding
    assert watch.held_demand(100.0) == {"Z1": (300.38, f)}
    watch.detector.expect = 290.0
    assert watch.held_demand(100.0) == {"Z1": (290.0, f)}


def test_a_real_leak_becomes_a_leak_alert_and_is_held(warmed):
    detector, rng = warmed
    net = network([node(z, "zone", name=f"Zone {z}", demand=base, priority=1) for z, base in ZONES.items()], [])
    watch = LeakWatch(net, AlertBook(lambda event: None, clock=lambda: 0.0), detector)

    class Feeding:      # what `feed` calls on a detector, sent through the watch
        def observe(self, zone, metric, value, ts):
            watch.observe(zone, metric, value, ts)
            return []
    for k in range(WARM_ROUNDS, WARM_ROUNDS + 20):
        feed(Feeding(), 5 * k, 1.0, leaks={"B": (30.0, 5.0)}, rng=rng)
    [alert] = watch.alerts.open_alerts()
    assert alert.subject == "B" and alert.message.startswith("Leak suspected in Zone B: inflow ")
    [(zone, (held, _))] = watch.held_demand(5 * (WARM_ROUNDS + 20)).items()
    assert zone == "B" and held == pytest.approx(300.0, rel=0.05)   # what B drew before the leak
