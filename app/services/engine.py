"""The decision engine: live state in, a plan and its decisions out.

It composes the planning parts, each with one job: PlanInputsBuilder (live
state -> solver inputs, and how far to trust them), RoutingModel (the pure
LP), Narrator (plan differences -> actions with causes), ReplanScheduler
(when to re-plan) and LeakWatch (leaks, which hold a zone's demand). Each
re-plan stores one plan, the single truth behind /api/plan and /api/routing,
and publishes at most one decision, with all its actions, to the DecisionBook.
"""
from __future__ import annotations

import logging
from typing import Callable

from app.domain.clock import Clock, iso
from app.domain.events import Event, PlanChanged
from app.domain.records import (BAD, Action, Alarm, Decision, PlannedFlow, PlannedReservoir, PlannedSource,
                                 PlannedZone, Reading, Routing)
from app.services.decisions import DecisionBook
from app.services.leak_watch import LeakWatch
from app.services.leaks import LeakFinding
from app.services.narration import SHORTFALL_MLD, Narrator
from app.services.network import Network
from app.services.plan_inputs import Confidence, PlanInputsBuilder
from app.services.routing import RoutingInputs, RoutingModel, RoutingPlan
from app.services.scheduler import ReplanScheduler
from app.services.store import DataStore

logger = logging.getLogger(__name__)

# Triggers quoted in one reason; the rest are counted.
MAX_CAUSES = 3
# Actions spelled out in a decision's one-line summary.
SUMMARY_ACTIONS = 2


class DecisionEngine:
    def __init__(self, network: Network, store: DataStore, model: RoutingModel, inputs: PlanInputsBuilder,
                 narrator: Narrator, scheduler: ReplanScheduler, leaks: LeakWatch, book: DecisionBook,
                 publish: Callable[[Event], None], clock: Clock,
                 offload: Callable = lambda fn, *args: fn(*args)):
        self.network = network
        self.store = store
        self.model = model
        self.builder = inputs
        self.narrator = narrator
        self.scheduler = scheduler
        self.leaks = leaks
        self.book = book
        self.publish = publish
        self.clock = clock
        # Runs the solve on a real OS thread (HiGHS releases the GIL while it solves), so
        # under eventlet or gevent a re-plan no longer stalls ingest and /live for its length.
        self.offload = offload
        self.plan: RoutingPlan | None = None          # last good plan
        self.plan_inputs: RoutingInputs | None = None
        self.confidence: Confidence | None = None
        self.status = "pending"
        self.message = ""
        self.generated_at: float | None = None
        self.last_solve_ms: float | None = None
        scheduler.run_once = lambda why: self.run_once(why)
        leaks.on_change = self._on_leak

    # -- wiring (pipeline hook, alert listener, control listener, lifecycle) -------------
    def observe(self, records: list[Reading]) -> None:
        """Pipeline hook: leak watch and re-plan triggers. O(1) per reading."""
        nodes = self.network.nodes
        for record in records:
            node = nodes.get(record.node_id or "")
            if node is None or record.quality == BAD:
                continue
            if node.kind == "zone":
                self.leaks.observe(node.id, record.metric, record.value, record.ts)
            self.scheduler.observe(node, record.metric, record.value)

    def on_alert(self, alert: Alarm) -> None:
        self.scheduler.on_alert(alert)

    def on_control(self, control: dict) -> None:
        self.scheduler.on_control(control)

    def request(self, why: str) -> None:
        self.scheduler.request(why)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    # -- one planning run --------------------------------------------------------------
    def run_once(self, why: list[str] | None = None) -> Routing:
        previous = self.plan
        inputs, confidence = self.builder.build(previous.flows if previous else {},
                                                previous.sources if previous else {},
                                                self.model.horizon, self.model.step_h)
        try:
            plan = self.offload(self.model.solve, inputs)
        except Exception as error:  # a solver failure must not lose the last good plan
            logger.exception("routing solve failed")
            plan = RoutingPlan("degraded", None, 0.0, {}, {}, {}, inputs.demand, {}, message=str(error))
        self.last_solve_ms = plan.solve_ms
        self.generated_at = self.clock()
        self.confidence = confidence
        decision = None
        if plan.status == "optimal":
            actions = self.narrator.changes(previous, self.plan_inputs, plan, inputs)
            if previous is None or actions:
                decision = self._plan_decision(previous, plan, inputs, actions, why or [], confidence)
            self.plan, self.plan_inputs = plan, inputs
            self.status, self.message = "optimal", ""
            self.scheduler.planned_demand = dict(plan.demand)
            self.scheduler.planned_levels = {
                glr.id: 100 * inputs.volume.get(glr.id, glr.volume) / glr.max_volume
                for glr in self.network.of_kind("reservoir")}
        else:
            self.status = plan.status
            self.message = (f"solver returned {plan.status}: {plan.message}; "
                            + ("keeping the last good plan" if self.plan else "no plan yet"))
            decision = self.book.new("plan_" + plan.status, "Keep the last good plan", "network",
                                     self.message, 0.3, "the solver found no plan", topic="plan")
        view = self.view()
        self.store.routing = view
        self.publish(PlanChanged(view, self.plan))
        if decision is not None:
            self.book.publish(decision)
        return view

    def _plan_decision(self, old: RoutingPlan | None, new: RoutingPlan, inputs: RoutingInputs,
                       actions: list[Action], why: list[str], confidence: Confidence) -> Decision:
        trigger = "; ".join(why[:MAX_CAUSES]) + (f" and {len(why) - MAX_CAUSES} more changes"
                                                  if len(why) > MAX_CAUSES else "")
        trigger = trigger or "periodic re-optimisation"
        if old is None:
            supplied = sum(new.sources.values())
            lead = Action("reroute", "network", f"Adopt routing plan: {supplied:.0f} MLD from "
                                                f"{sum(v > 0 for v in new.sources.values())} sources")
            actions = [lead] + [a for a in actions if a.kind not in ("source_start", "pump_start")]
            reason = f"{trigger}; first plan, for demand of {sum(new.demand.values()):.0f} MLD"
        else:
            lead = actions[0]
            causes = list(dict.fromkeys(c for a in actions for c in a.causes))
            reason = trigger + (f"; {'; '.join(causes[:MAX_CAUSES])}" if causes else "")
            for held_zone in inputs.held:
                if any(a.target == held_zone for a in actions):
                    reason += (f"; {self.narrator.name(held_zone)} is suspected of leaking, so the plan "
                               f"routes no extra water into it to cover the loss")
        summary = "; ".join(a.text for a in actions[:SUMMARY_ACTIONS])
        if len(actions) > SUMMARY_ACTIONS:
            summary += f" (+{len(actions) - SUMMARY_ACTIONS} more)"
        return self.book.new(lead.kind, summary, lead.target, reason, confidence.value, confidence.reason,
                             topic="plan", actions=actions)

    def _on_leak(self, finding: LeakFinding, text: str) -> None:
        zone = self.network.nodes[finding.zone]
        confidence = self.confidence or Confidence(0.5, "no plan yet")
        if finding.suspected:
            reason = (f"Leak suspected in {text}. Until it is found, the plan serves {zone.name} "
                      f"the {finding.expected:.0f} MLD the city-wide demand implies and routes no "
                      f"extra water into it to cover the loss")
            decision = self.book.new("leak_suspected", f"Inspect {zone.name} for a leak or burst", zone.id,
                                     reason, confidence.value, confidence.reason, topic=f"leak:{zone.id}",
                                     evidence=finding.evidence())
            self.request(f"leak suspected in {zone.name}")
        else:
            decision = self.book.new("leak_cleared", f"Serve {zone.name} its full demand again", zone.id,
                                     f"Leak no longer suspected in {text}", confidence.value,
                                     confidence.reason, topic=f"leak:{zone.id}")
            self.request(f"leak cleared in {zone.name}")
        self.book.publish(decision)

    # -- views -------------------------------------------------------------------------
    def plan_view(self) -> dict:
        """/api/plan: the whole horizon of the stored plan (the first step is /api/routing)."""
        plan, net = self.plan, self.network
        head = {"status": self.status, "message": self.message, "horizon_h": self.model.horizon * self.model.step_h,
                "step_h": self.model.step_h, "solve_ms": round(self.last_solve_ms, 2) if self.last_solve_ms else None,
                "created_at": iso(self.generated_at) if self.generated_at else None}
        if plan is None:
            return {**head, "steps": [], "totals": {"energy_kwh": 0.0, "cost": 0.0, "shortfall": 0.0}}
        steps = [{"start": iso(step.start) if step.start is not None else None, "tariff": step.tariff,
                  "energy_kwh": step.energy_kwh, "cost": step.cost,
                  "sources": [{"node_id": s, "output": out} for s, out in step.sources.items()],
                  "reservoirs": [{"node_id": r, "volume_end": v, "min_volume": net.nodes[r].min_volume,
                                  "max_volume": net.nodes[r].max_volume} for r, v in step.volume_end.items()],
                  "shortfall": round(sum(step.shortfall.values()), 3)}
                 for step in plan.steps]
        totals = {"energy_kwh": round(sum(s.energy_kwh for s in plan.steps), 1),
                  "cost": round(sum(s.cost for s in plan.steps), 1),
                  "shortfall": round(sum(sum(s.shortfall.values()) for s in plan.steps), 3)}
        return {**head, "steps": steps, "totals": totals}

    def zones_in_shortfall(self) -> list[str]:
        if self.plan is None:
            return []
        return [z for z, s in self.plan.shortfall.items() if s >= SHORTFALL_MLD]

    def view(self) -> Routing:
        """/api/routing: the first step of the stored plan."""
        plan, net = self.plan, self.network
        if plan is None:
            return Routing(iso(self.generated_at) if self.generated_at else None, self.status, self.message,
                           None, self.last_solve_ms)
        held = self.plan_inputs.held if self.plan_inputs else {}
        excluded = self.plan_inputs.excluded_sources if self.plan_inputs else {}
        return Routing(
            iso(self.generated_at), self.status, self.message, plan.objective,
            round(self.last_solve_ms or plan.solve_ms, 2),
            flows=[PlannedFlow(link_id, net.links[link_id].from_, net.links[link_id].to, flow,
                               net.links[link_id].capacity)
                   for link_id, flow in plan.flows.items()],
            zones=[PlannedZone(z, round(plan.demand[z], 3), round(plan.demand[z] - short, 3), short,
                               round(held[z][0], 3) if z in held else None)
                   for z, short in plan.shortfall.items()],
            sources=[PlannedSource(s, out, net.nodes[s].capacity, excluded.get(s))
                     for s, out in plan.sources.items()],
            has_plan=True, mode=self.book.controls.mode,
            confidence=self.confidence.value if self.confidence else None,
            confidence_reason=self.confidence.reason if self.confidence else None,
            reservoirs=[PlannedReservoir(r, v, net.nodes[r].max_volume) for r, v in plan.volume_end.items()])
