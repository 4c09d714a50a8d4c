"""Plan inputs from live state: what the solver is told, and how far to trust it.

Demand per zone and step comes from its live meter for the first step and
from the forecast for later ones (the learned daily profile, else the
typical diurnal shape scaled to the live level). Reservoir volumes come from
live levels; operator settings, isolations, quality exclusions, source
outages and leak holds become bounds. Suspect, bad and stale readings are
not planned on; the confidence says how much of the input was live and good,
and how well the forecast has done lately.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.domain.clock import Clock
from app.domain.records import GOOD
from app.services.alerts import AlertBook
from app.services.controls import ControlService
from app.services.forecast import DemandForecaster
from app.services.leak_watch import LeakWatch
from app.services.network import MISSED_REPORTS, Network
from app.services.routing import RoutingInputs
from app.services.simulation import diurnal
from app.services.local_time import HOUR_S, is_weekend, local_hour
from app.services.store import DataStore
from app.services.tariff import Tariff

# A source delivering less than this share of its planned output is in outage ...
OUTAGE_SHARE = 0.5
# ... once its plan asked for at least this much (MLD).
OUTAGE_MIN_MLD = 10.0
# Confidence with no forecast error measured yet: the forecast is unproven.
UNMEASURED_FORECAST_FACTOR = 0.9
# Forecast error (MAPE, %) that halves confidence; errors above count no more.
FORECAST_ERROR_HALVES_AT = 50.0


@dataclass
class Confidence:
    value: float
    reason: str


class PlanInputsBuilder:
    def __init__(self, network: Network, store: DataStore, controls: ControlService, alerts: AlertBook,
                 leaks: LeakWatch, forecaster: DemandForecaster | None, tariff: Tariff,
                 utc_offset_h: float, clock: Clock):
        self.network = network
        self.store = store
        self.controls = controls
        self.alerts = alerts
        self.leaks = leaks
        self.forecaster = forecaster
        self.tariff = tariff
        self.utc_offset_h = utc_offset_h
        self.clock = clock
        self.zones = network.of_kind("zone")
        self.reservoirs = network.of_kind("reservoir")

    def build(self, previous_flows: dict[str, float], previous_sources: dict[str, float],
              horizon: int = 1, step_h: float = 1.0) -> tuple[RoutingInputs, Confidence]:
        now = self.clock()
        demand, live_zones = {}, 0
        for zone in self.zones:
            value = self.fresh_value(zone.id, "flow", now)
            if value is not None:
                demand[zone.id], live_zones = value, live_zones + 1
            else:
                demand[zone.id] = self.forecast(zone, now, now) or zone.demand
        steps = [dict(demand)]
        for k in range(1, horizon):
            at = now + k * step_h * HOUR_S
            steps.append({zone.id: self.forecast(zone, at, now, live=demand[zone.id]) for zone in self.zones})
        held = {}
        for zone_id, (planned, _finding) in self.leaks.held_demand(now).items():
            if demand.get(zone_id, 0.0) > planned:
                held[zone_id] = (demand[zone_id], planned)
                ratio = planned / demand[zone_id]
                for step in steps:
                    step[zone_id] *= ratio
        volume, live_levels = {}, 0
        for glr in self.reservoirs:
            level = self.fresh_value(glr.id, "level", now)
            if level is not None:
                volume[glr.id] = min(glr.max_volume, max(0.0, level / 100 * glr.max_volume))
                live_levels += 1
        available, outages = self._outages(previous_sources, now)
        inputs = RoutingInputs(
            demand=steps[0], demand_steps=steps, volume=volume, link_factor=self.controls.link_factors(),
            isolated=set(self.controls.isolated), excluded_sources=self.excluded_sources(),
            previous=dict(previous_flows), available=available, outages=outages, held=held,
            restrictions=self.restrictions(), start=now,
            tariff=[self.tariff.rate(now + k * step_h * HOUR_S, self.utc_offset_h) for k in range(horizon)])
        return inputs, self._confidence(live_zones, live_levels)

    # -- demand ------------------------------------------------------------------------
    def forecast(self, zone, at: float, now: float, live: float | None = None) -> float:
        """Demand of `zone` at time `at`: the learned profile, else the typical
        diurnal shape scaled to the live level, else its base demand."""
        if self.forecaster is not None:
            learned = self.forecaster.profile_at(zone.id, at)
            if learned:
                return learned
        shape_at = self._shape(at)
        if live:
            return live * shape_at / self._shape(now)
        return (zone.demand or 0.0) * shape_at

    def _shape(self, ts: float) -> float:
        return diurnal(local_hour(ts, self.utc_offset_h), is_weekend(ts, self.utc_offset_h))

    def fresh_value(self, node_id: str, metric: str, now: float) -> float | None:
        values = []
        for sensor in self.network.sensors_at(node_id, metric):
            if sensor.id.endswith(("_in", "_out")):
                continue
            record = self.store.latest(sensor.id)
            if record and now - record.ts <= MISSED_REPORTS * sensor.interval_s \
                    and record.quality == GOOD:
                values.append(record.value)
        return sum(values) / len(values) if values else None

    # -- limits ------------------------------------------------------------------------
    def excluded_sources(self) -> dict[str, str]:
        excluded = {}
        for alert in self.alerts.open_alerts():
            node = self.network.nodes.get(alert.node_id or "")
            if node is not None and node.kind == "source" and alert.severity == "critical" \
                    and alert.condition.startswith("quality") and alert.active:
                excluded[node.id] = (f"{alert.metric} at {alert.value} "
                                     f"breaches the critical limit {alert.threshold}")
        return excluded

    def _outages(self, planned: dict[str, float], now: float) -> tuple[dict[str, float], dict[str, str]]:
        available, outages = {}, {}
        for source_id, asked in planned.items():
            measured = self.fresh_value(source_id, "flow", now)
            if measured is not None and asked >= OUTAGE_MIN_MLD and measured < OUTAGE_SHARE * asked:
                available[source_id] = measured
                outages[source_id] = f"delivering {measured:.0f} MLD of the {asked:.0f} MLD planned"
        return available, outages

    def restrictions(self) -> dict[str, str]:
        """The operator controls behind today's bounds, in words, by target."""
        texts = {}
        for control in reversed(self.controls.recent(500)):
            if control.get("origin") != "operator":
                continue
            target, action = control.get("target"), control["action"]
            if action == "set_valve":
                texts[target] = f"{control['operator']} set valve {target} to {control['value']}%"
            elif action == "set_pump":
                texts[target] = f"{control['operator']} set pump {target} {control['value']}"
            elif action == "isolate":
                texts[target] = f"{control['operator']} isolated {target}"
            elif action == "restore":
                texts.pop(target, None)
        factors = self.controls.link_factors()
        return {t: text for t, text in texts.items()
                if t in self.controls.isolated or factors.get(t, 1.0) < 1.0}

    # -- trust -------------------------------------------------------------------------
    def _confidence(self, live_zones: int, live_levels: int) -> Confidence:
        expected = len(self.zones) + len(self.reservoirs)
        share = (live_zones + live_levels) / expected if expected else 1.0
        error = self.forecaster.recent_error() if self.forecaster else None
        if error is None:
            factor, said = UNMEASURED_FORECAST_FACTOR, "forecast error not measured yet"
        else:
            factor = 1 - 0.5 * min(1.0, error / FORECAST_ERROR_HALVES_AT)
            said = f"hour-ahead forecast error {error:.1f}% over the last day"
        value = round(share * factor, 2)
        return Confidence(value, f"{value:.0%}: {live_zones} of {len(self.zones)} zone meters and "
                                 f"{live_levels} of {len(self.reservoirs)} reservoir levels live and good; {said}")
