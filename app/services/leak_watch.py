"""Leak watch: feeds zone readings to the detector, raises alerts, holds leaking zones.

While a zone is suspected of leaking, the plan serves it only what the
city-wide move implies (`held_demand`), so no extra water is routed into
it to cover the loss; the decision says so. The alert carries the evidence
(excess flow in MLD and %, unexplained pressure drop in m, how long) and is
refreshed while the leak lasts.
"""
from __future__ import annotations

from typing import Callable

from app.services.alerts import AlertBook
from app.services.leaks import LeakDetector, LeakFinding
from app.services.network import Network

# How often a standing leak alert's evidence is refreshed (s of reading time).
EVIDENCE_REFRESH_S = 30.0


def describe(finding: LeakFinding, zone_name: str) -> str:
    """The evidence in one sentence, for the alert and the decision."""
    if finding.rule == "night":
        text = (f"minimum night flow {finding.inflow:.0f} MLD is {finding.excess:.0%} above the "
                f"{finding.expected:.0f} MLD its usual night share implies")
    else:
        basis = ("the city-wide move implies" if finding.basis == "city"
                 else "its own recent level implies (too few other zones report)")
        text = (f"inflow {finding.inflow:.0f} MLD is {finding.excess_mld:.1f} MLD ({finding.excess:.1%}) "
                f"above the {finding.expected:.0f} MLD {basis}, while pressure is "
                f"{finding.pressure_drop_m:.1f} m below what its flow explains, for {finding.duration_s:.0f} s")
    if finding.rule != "night" and finding.night_flow is not None:
        text += f"; last minimum night flow {finding.night_flow:.0f} MLD"
    return f"{zone_name}: {text}"


class LeakWatch:
    def __init__(self, network: Network, alerts: AlertBook, detector: LeakDetector,
                 on_change: Callable[[LeakFinding, str], None] = lambda finding, text: None):
        self.network = network
        self.alerts = alerts
        self.detector = detector
        self.on_change = on_change
        self._refreshed: dict[str, float] = {}

    def observe(self, node_id: str, metric: str, value: float, ts: float) -> None:
        for finding in self.detector.observe(node_id, metric, value, ts):
            self._on_finding(finding, ts)
        if node_id in self.detector.zones and ts - self._refreshed.get(node_id, ts) >= EVIDENCE_REFRESH_S:
            self._refresh(node_id, ts)

    def held_demand(self, now: float) -> dict[str, tuple[float, LeakFinding]]:
        """Suspected zones -> the demand the plan may serve them, and why."""
        held = {}
        for zone, finding in self.detector.suspected().items():
            expected, _basis = self.detector.expected(zone, now)
            held[zone] = (expected if expected else finding.expected, finding)
        return held

    def _on_finding(self, finding: LeakFinding, ts: float) -> None:
        zone = self.network.nodes[finding.zone]
        text = describe(finding, zone.name)
        if finding.suspected:
            self._refreshed[zone.id] = ts
            self.alerts.raise_(zone.id, "leak_suspected", "warning", f"Leak suspected in {text}",
                               node_id=zone.id, sensor_id=None, metric="flow",
                               value=round(finding.inflow, 1), threshold=round(finding.expected, 1),
                               evidence=finding.evidence())
        else:
            self._refreshed.pop(zone.id, None)
            self.alerts.clear(zone.id, "leak_suspected")
        self.on_change(finding, text)

    def _refresh(self, zone_id: str, ts: float) -> None:
        """Standing leak: bring the alert's evidence up to date (no new transition)."""
        state = self.detector.zones[zone_id]
        if not state.suspected or state.rule != "balance" or state.flow is None:
            self._refreshed.pop(zone_id, None)
            return
        self._refreshed[zone_id] = ts
        finding = self.detector.current(zone_id, ts)
        if finding is not None:
            zone = self.network.nodes[zone_id]
            self.alerts.raise_(zone_id, "leak_suspected", "warning", f"Leak suspected in {describe(finding, zone.name)}",
                               node_id=zone_id, sensor_id=None, metric="flow",
                               value=round(finding.inflow, 1), threshold=round(finding.expected, 1),
                               evidence=finding.evidence())
