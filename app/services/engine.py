"""The decision engine: re-plans routing on significant change and explains it.

It gathers the live state into RoutingInputs, solves the LP in a background
task (debounced, and at least every `interval_s`), turns each change of plan
into decisions with numbers in their reasons, and in auto mode sends them to
the devices as commands. Ingest only ever flags that a re-plan is wanted.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable

from app.services.alerts import AlertBook
from app.services.controls import ControlService
from app.services.history import HistoryRepository
from app.services.leak_watch import LeakWatch
from app.services.leaks import LeakDetector, LeakFinding
from app.services.network import Network
from app.services.routing import RoutingInputs, RoutingModel, RoutingPlan
from app.services.store import DataStore, iso
from app.services.ids import id_prefix

logger = logging.getLogger(__name__)

# A link's planned flow must move by this much (MLD, and share of capacity)
# before the change is worth a decision.
LINK_CHANGE_MIN_MLD = 5.0
LINK_CHANGE_MIN_SHARE = 0.03
# Most link decisions one re-plan produces (largest changes first).
MAX_LINK_DECISIONS = 8
# Reservoir level change (percentage points) that triggers a re-plan.
LEVEL_TRIGGER_POINTS = 5.0
# Triggers quoted in one reason; the rest are counted.
MAX_CAUSES = 3
# Readings older than this many reporting intervals don't count as live demand.
FRESH_INTERVALS = 3


class DecisionEngine:
    def __init__(self, network: Network, store: DataStore, controls: ControlService,
                 alerts: AlertBook, history: HistoryRepository,
                 broadcast: Callable[[str, object], None], spawn: Callable,
                 sleep: Callable[[float], None], *, interval_s: float, debounce_s: float,
                 demand_trigger: float, leaks: LeakDetector,
                 forecast: Callable[[str], float | None] = lambda zone: None,
                 clock: Callable[[], float] = time.time):
        self.network = network
        self.model = RoutingModel(network)
        self.store = store
        self.controls = controls
        self.alerts = alerts
        self.history = history
        self.broadcast = broadcast
        self.spawn = spawn
        self.sleep = sleep
        self.interval_s = interval_s
        self.debounce_s = debounce_s
        self.demand_trigger = demand_trigger
        self.forecast = forecast
        self.clock = clock
        self.leaks = LeakWatch(network, alerts, leaks, on_change=self._on_leak)
        self.plan: RoutingPlan | None = None      # last good plan
        self.status = "pending"
        self.message = ""
        self.generated_at: float | None = None
        self.solves = 0
        self.last_solve_ms: float | None = None
        self._excluded: dict[str, str] = {}
        self.plan_excluded: set[str] = set()     # sources excluded in the last good plan
        self.plan_isolated: set[str] = set()     # ids isolated in the last good plan
        self._why: list[str] = []
        self._wake = threading.Event()
        self._running = False
        self._ids = itertools.count(1)
        self._prefix = id_prefix(clock)
        self._levels_at_plan: dict[str, float] = {}
        self.held: dict[str, tuple[float, float]] = {}   # leaking zone -> (metered, planned) MLD
        self.plan_held: dict[str, tuple[float, float]] = {}
        controls.listeners.append(self._on_control)

    # -- triggers --------------------------------------------------------------
    def request(self, why: str) -> None:
        """Ask for a re-plan soon; `why` becomes part of the decisions' reasons."""
        if why not in self._why:
            self._why.append(why)
        self._wake.set()

    def _on_control(self, control: dict) -> None:
        if control["action"] in ("set_valve", "set_pump", "isolate", "restore"):
            verb = {"isolate": "isolated", "restore": "restored"}.get(control["action"], "set")
            value = "" if control["action"] in ("isolate", "restore") else f" to {control['value']}"
            self.request(f"operator {control['operator']} {verb} {control['target']}{value}")

    def observe(self, records: list[dict]) -> None:
        """Pipeline hook: flag significant changes; run leak detection. O(1) per reading."""
        nodes = self.network.nodes
        for record in records:
            node = nodes.get(record.get("node_id") or "")
            if node is None:
                continue
            metric = record["metric"]
            # A burst is a sudden jump, flagged suspect: leak detection must see it.
            if node.kind == "zone" and record.get("quality", "good") != "bad":
                self.leaks.observe(node.id, metric, record["value"], record["ts"])
                if metric == "flow" and self.plan:
                    planned = self.plan.demand.get(node.id)
                    if planned and abs(record["value"] - planned) / planned > self.demand_trigger:
                        change = (record["value"] - planned) / planned
                        self.request(f"{node.name} demand {'rose' if change > 0 else 'fell'} "
                                     f"{abs(change):.0%} to {record['value']:.0f} MLD")
            elif node.kind == "reservoir" and metric == "level":
                before = self._levels_at_plan.get(node.id)
                if before is not None and abs(record["value"] - before) >= LEVEL_TRIGGER_POINTS:
                    self.request(f"reservoir {node.name} moved from {before:.0f}% to {record['value']:.0f}%")

    def on_alert(self, alert: dict) -> None:
        """Critical quality at a source changes which sources may be used."""
        node = self.network.nodes.get(alert.get("node_id") or "")
        if node is not None and node.kind == "source" and alert["condition"].startswith("quality"):
            self.request(f"{alert['severity']} {alert.get('metric')} alert at {node.name}")

    # -- the background task -------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.request("start-up")
        self.spawn(self._run)

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    def _run(self) -> None:
        while self._running:
            woke = self._wake.wait(timeout=self.interval_s)
            if not self._running:
                break
            if woke:
                self.sleep(self.debounce_s)   # let a burst of changes settle
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                logger.exception("routing run failed")

    # -- one planning run -------------------------------------------------------------
    def inputs(self) -> tuple[RoutingInputs, float]:
        """Live state as optimiser inputs, and the share of demand that was live."""
        demand, live = {}, 0
        now = self.clock()
        zones = self.network.of_kind("zone")
        for zone in zones:
            value = self._fresh_value(zone.id, "flow", now)
            if value is not None:
                demand[zone.id], live = value, live + 1
            else:
                demand[zone.id] = self.forecast(zone.id) or zone.demand
        # A leaking zone is served what the city-wide move implies, not its loss.
        self.held = {}
        for zone_id, (held, _finding) in self.leaks.held_demand(now).items():
            if demand.get(zone_id, 0.0) > held:
                self.held[zone_id] = (demand[zone_id], held)
                demand[zone_id] = held
        volume = {}
        for glr in self.network.of_kind("reservoir"):
            level = self._fresh_value(glr.id, "level", now)
            if level is not None:
                volume[glr.id] = min(glr.max_volume, max(0.0, level / 100 * glr.max_volume))
        self._excluded = self._excluded_sources()
        inputs = RoutingInputs(
            demand=demand, volume=volume, link_factor=self.controls.link_factors(),
            isolated=set(self.controls.isolated), excluded_sources=dict(self._excluded),
            previous=dict(self.plan.flows) if self.plan else {})
        return inputs, live / len(zones) if zones else 1.0

    def _fresh_value(self, node_id: str, metric: str, now: float) -> float | None:
        values = []
        for sensor in self.network.sensors_at(node_id, metric):
            if sensor.id.endswith(("_in", "_out")):
                continue
            record = self.store.latest(sensor.id)
            # Suspect and bad data are shown, but not planned on.
            if record and now - record["ts"] <= FRESH_INTERVALS * sensor.interval_s \
                    and record.get("quality", "good") == "good":
                values.append(record["value"])
        return sum(values) / len(values) if values else None

    def _excluded_sources(self) -> dict[str, str]:
        excluded = {}
        for alert in self.alerts.open_alerts():
            node = self.network.nodes.get(alert.get("node_id") or "")
            if node is not None and node.kind == "source" and alert["severity"] == "critical" \
                    and alert["condition"].startswith("quality"):
                excluded[node.id] = (f"{alert.get('metric')} at {alert.get('value')} "
                                     f"breaches the critical limit {alert.get('threshold')}")
        return excluded

    def run_once(self) -> dict:
        inputs, live_share = self.inputs()
        why, self._why = self._why, []
        excluded_before = self.plan_excluded
        try:
            plan = self.model.solve(inputs)
        except Exception as error:  # a solver failure must not lose the last good plan
            logger.exception("routing solve failed")
            plan = RoutingPlan("degraded", None, 0.0, {}, {}, {}, inputs.demand, {}, message=str(error))
        self.solves += 1
        self.last_solve_ms = plan.solve_ms
        self.generated_at = self.clock()
        decisions: list[dict] = []
        confidence = round(0.5 + 0.45 * live_share, 2)
        if plan.status == "optimal":
            decisions = self._decide(self.plan, plan, inputs, why, confidence, excluded_before)
            self.plan = plan
            self.plan_excluded = set(inputs.excluded_sources)
            self.plan_isolated = set(inputs.isolated)
            self.plan_held = dict(self.held)
            self.status, self.message = "optimal", ""
            self._levels_at_plan = {glr.id: 100 * inputs.volume.get(glr.id, glr.volume) / glr.max_volume
                                    for glr in self.network.of_kind("reservoir")}
        else:
            self.status = plan.status
            self.message = (f"solver returned {plan.status}: {plan.message}; "
                            + ("keeping the last good plan" if self.plan else "no plan yet"))
            decisions.append(self._decision("plan_" + plan.status, "Keep the last good plan",
                                            "network", self.message, 0.3))
        view = self.view()
        self.store.routing = view
        self.broadcast("routing_update", view)
        self._publish(decisions)
        return view

    # -- decisions ----------------------------------------------------------------------
    def _decision(self, kind: str, action: str, target: str, reason: str, confidence: float) -> dict:
        return {"id": f"d{self._prefix}-{next(self._ids)}", "timestamp": iso(self.clock()),
                "kind": kind, "action": action, "target": target, "reason": reason,
                "confidence": confidence}

    def _decide(self, old: RoutingPlan | None, new: RoutingPlan, inputs: RoutingInputs,
                why: list[str], confidence: float, excluded_before: set[str]) -> list[dict]:
        net = self.network
        cause = "; ".join(why[:MAX_CAUSES]) + (f" and {len(why) - MAX_CAUSES} more changes"
                                                if len(why) > MAX_CAUSES else "")
        cause = cause or "periodic re-optimisation for cost"
        decisions = []
        for source_id in sorted(inputs.isolated & set(new.sources) - self.plan_isolated):
            name = net.nodes[source_id].name
            before = old.sources.get(source_id, 0.0) if old else 0.0
            decisions.append(self._decision(
                "isolate_source", f"Take {name} out of supply ({before:.0f} → 0 MLD)", source_id,
                f"{cause}; its {before:.0f} MLD is made up from other sources and storage", 0.95))
        for source_id, reason in inputs.excluded_sources.items():
            if source_id not in excluded_before:
                name = net.nodes[source_id].name
                decisions.append(self._decision(
                    "isolate_source", f"Take {name} out of supply (0 MLD)", source_id,
                    f"Water quality: {reason}; its demand is rerouted to other sources", 0.95))
        if old is None:
            supplied = sum(new.sources.values())
            decisions.append(self._decision(
                "reroute", f"Adopt routing plan: {supplied:.0f} MLD from {sum(v > 0 for v in new.sources.values())} sources",
                "network", f"{cause}; first plan, for demand of {sum(new.demand.values()):.0f} MLD", confidence))
        else:
            changes = []
            for link_id, flow in new.flows.items():
                before = old.flows.get(link_id, 0.0)
                link = net.links[link_id]
                if abs(flow - before) >= max(LINK_CHANGE_MIN_MLD, LINK_CHANGE_MIN_SHARE * link.capacity):
                    changes.append((abs(flow - before), link, before, flow))
            changes.sort(key=lambda c: -c[0])
            for _, link, before, flow in changes[:MAX_LINK_DECISIONS]:
                decisions.append(self._link_decision(link, before, flow, inputs, cause, confidence))
        for zone_id, short in new.shortfall.items():
            before = old.shortfall.get(zone_id, 0.0) if old else 0.0
            if short >= LINK_CHANGE_MIN_MLD and abs(short - before) >= LINK_CHANGE_MIN_MLD:
                decisions.append(self._shortfall_decision(zone_id, short, new, inputs, cause, confidence))
            elif before >= LINK_CHANGE_MIN_MLD and short < LINK_CHANGE_MIN_MLD:
                zone = net.nodes[zone_id]
                decisions.append(self._decision("zone_restored", f"Restore full supply to {zone.name}",
                                                zone_id, f"{cause}; shortfall of {before:.0f} MLD cleared",
                                                confidence))
        return decisions

    def _label(self, link) -> str:
        net = self.network
        return link.name or f"{net.nodes[link.from_].name} → {net.nodes[link.to].name}"

    def _context(self, link, inputs: RoutingInputs) -> str:
        """Numbers about the link's downstream end, for the reason."""
        node = self.network.nodes[link.to]
        if node.kind == "reservoir":
            volume = inputs.volume.get(node.id, node.volume)
            return f"reservoir {node.name} at {100 * volume / node.max_volume:.0f}%"
        if node.kind == "zone":
            return f"{node.name} demand {inputs.demand.get(node.id, node.demand):.0f} MLD"
        return ""

    def _link_decision(self, link, before: float, flow: float, inputs: RoutingInputs,
                       cause: str, confidence: float) -> dict:
        label, context = self._label(link), self._context(link, inputs)
        reason = cause + (f"; {context}" if context and context not in cause else "")
        if link.kind == "pump" and before > 0 and flow == 0:
            return self._decision("pump_stop", f"Stop pump {label} (was {before:.0f} MLD)", link.id, reason, confidence)
        if link.kind == "pump" and before == 0 and flow > 0:
            return self._decision("pump_start", f"Start pump {label} at {flow:.0f} MLD", link.id, reason, confidence)
        if link.kind == "valve":
            opening = 100 * flow / link.capacity if link.capacity else 0
            return self._decision("valve_setting", f"Set valve {label} to {opening:.0f}% "
                                  f"({before:.0f} → {flow:.0f} MLD)", link.id, reason, confidence)
        verb = "Raise" if flow > before else "Lower"
        return self._decision("reroute", f"{verb} {label} from {before:.0f} to {flow:.0f} MLD",
                              link.id, reason, confidence)

    def _shortfall_decision(self, zone_id: str, short: float, plan: RoutingPlan,
                            inputs: RoutingInputs, cause: str, confidence: float) -> dict:
        net = self.network
        zone = net.nodes[zone_id]
        demand = plan.demand.get(zone_id, 0.0)
        total_demand, supplied = sum(plan.demand.values()), sum(plan.sources.values())
        served_first = sorted({net.nodes[z].priority for z, s in plan.shortfall.items() if s < 1e-6}, reverse=True)
        return self._decision(
            "zone_shortfall", f"Cut {zone.name} by {short:.0f} MLD ({short / demand:.0%} of demand)" if demand else
            f"Cut {zone.name}", zone_id,
            f"{cause}; sources can deliver {supplied:.0f} MLD against demand {total_demand:.0f} MLD; "
            f"{zone.name} has priority {zone.priority}"
            + (f", zones of priority {', '.join(map(str, served_first))} are served first" if served_first else ""),
            confidence)

    def _on_leak(self, finding: LeakFinding, text: str) -> None:
        zone = self.network.nodes[finding.zone]
        if finding.suspected:
            reason = (f"Leak suspected in {text}. Until it is found, the plan serves {zone.name} "
                      f"the {finding.expected:.0f} MLD the city-wide demand implies and routes no "
                      f"extra water into it to cover the loss")
            decision = self._decision("leak_suspected", f"Inspect {zone.name} for a leak or burst",
                                      zone.id, reason, 0.8)
            decision["evidence"] = finding.evidence()
            self._publish([decision])
            self.request(f"leak suspected in {zone.name}")
        else:
            self._publish([self._decision("leak_cleared", f"Serve {zone.name} its full demand again",
                                          zone.id, f"Leak no longer suspected in {text}", 0.8)])
            self.request(f"leak cleared in {zone.name}")

    def _publish(self, decisions: list[dict]) -> None:
        if not decisions:
            return
        self.store.add_decisions(decisions)
        auto = self.controls.mode == "auto"
        for decision in decisions:
            self.history.write_event(
                "decision", {"kind": decision["kind"], "target": decision["target"]},
                {"id": decision["id"], "action": decision["action"], "reason": decision["reason"],
                 "confidence": float(decision["confidence"])}, self.clock())
            self.broadcast("decision", decision)
            if auto:
                self._command(decision)

    def _command(self, decision: dict) -> None:
        """Auto mode: turn a routing decision into the device command it implies."""
        link = self.network.links.get(decision["target"])
        if link is None or self.plan is None:
            return
        flow = self.plan.flows.get(link.id, 0.0)
        if decision["kind"] == "valve_setting":
            self.controls.issue("set_valve", link.id, round(100 * flow / link.capacity, 1), decision["reason"])
        elif decision["kind"] in ("pump_start", "pump_stop"):
            self.controls.issue("set_pump", link.id, "on" if flow > 0 else "off", decision["reason"])

    # -- views ---------------------------------------------------------------------------
    def zones_in_shortfall(self) -> list[str]:
        if self.plan is None:
            return []
        return [z for z, s in self.plan.shortfall.items() if s >= LINK_CHANGE_MIN_MLD]

    def view(self) -> dict:
        plan, net = self.plan, self.network
        if plan is None:
            return {"generated_at": iso(self.generated_at) if self.generated_at else None,
                    "status": self.status, "message": self.message, "objective": None,
                    "solve_ms": self.last_solve_ms, "flows": [], "zones": [], "sources": []}
        return {
            "generated_at": iso(self.generated_at),
            "status": self.status,
            "message": self.message,
            "mode": self.controls.mode,
            "objective": plan.objective,
            "solve_ms": round(self.last_solve_ms or plan.solve_ms, 2),
            "flows": [{"link_id": link_id, "from": net.links[link_id].from_, "to": net.links[link_id].to,
                       "flow": flow, "capacity": net.links[link_id].capacity}
                      for link_id, flow in plan.flows.items()],
            "zones": [{"node_id": z, "demand": round(plan.demand[z], 3),
                       "supplied": round(plan.demand[z] - short, 3), "shortfall": short,
                       **({"leak_held": True, "metered": round(self.plan_held[z][0], 3)}
                          if z in self.plan_held else {})}
                      for z, short in plan.shortfall.items()],
            "sources": [{"node_id": s, "output": out, "capacity": net.nodes[s].capacity,
                         "excluded": self.plan_excluded_reason(s)}
                        for s, out in plan.sources.items()],
            "reservoirs": [{"node_id": r, "volume_end": v, "max_volume": net.nodes[r].max_volume}
                           for r, v in plan.volume_end.items()],
        }

    def plan_excluded_reason(self, source_id: str) -> str | None:
        return self._excluded.get(source_id)
