"""What a proposed control would do, taken from the plan: the plan in force re-solved with it.

A preview changes nothing. It reads the plan in force, the inputs it was
solved on and the operators' settings; it solves its own routing model
(never the engine's, whose basis the next re-plan starts from) with the
control applied to a copy of those inputs; and it compares the two first
steps: each source's output, each zone's supply and shortfall, the links
whose flow moves materially, and a one-line sentence naming the
consequence. No control state, audit entry, decision, broadcast or device
command comes of it.

The what-if model has the engine's horizon when that LP is small enough to
solve within a request (`WHAT_IF_MAX_COLUMNS`); on bigger networks it is one
step, and the plan it compares with is then the same inputs re-solved on that
one step (kept per plan, so a preview still costs one solve).
`set_mode auto` needs no solve: it compares the plan with the valves and
pumps as operators left them, which is what the engine would start commanding.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

from app.domain.clock import iso
from app.models import ControlRequest
from app.services.consequence_words import ConsequenceWords, ZoneChange, mld, names
from app.services.controls import ControlService, pump_speed
from app.services.engine import DecisionEngine
from app.services.narration import ON_MLD, SHORTFALL_MLD, Narrator
from app.services.network import Network
from app.services.routing import RoutingInputs, RoutingModel, RoutingPlan

logger = logging.getLogger(__name__)

# A change in flow (MLD) below this is solver noise or rounding, not a consequence.
MATERIAL_MLD = 0.5
# Lines of detail for the confirmation: links moved, settings auto mode would command.
DETAIL_LINKS = 5
# Actions that change nothing the plan is built on.
NO_NETWORK_EFFECT = {
    "ack_alert": "Acknowledging an alarm changes nothing in the network or the plan.",
    "reset_demo": "The demo reset forgets ad-hoc sensors, alarms and decisions; the network, "
                  "its controls and the plan stay as they are.",
}


def _bounds(inputs: RoutingInputs) -> tuple[frozenset, frozenset]:
    """What operators' settings make of the plan's bounds: isolations and the links not fully open."""
    return frozenset(inputs.isolated), frozenset((k, v) for k, v in inputs.link_factor.items() if v != 1.0)


class WhatIf:
    def __init__(self, network: Network, engine: DecisionEngine, controls: ControlService,
                 narrator: Narrator, make_model: Callable[[], RoutingModel],
                 offload: Callable = lambda fn, *args: fn(*args),
                 live_inputs: Callable[[], RoutingInputs] | None = None):
        self.network = network
        self.engine = engine
        self.controls = controls
        self.narrator = narrator
        self.words = ConsequenceWords(network, narrator.name)
        self.make_model = make_model
        # Runs a solve off the event loop where the async mode allows (a real OS thread).
        self.offload = offload
        # Inputs from live state, for a server with no plan of its own (a cluster's follower,
        # or before the first plan): both plans are then solved here.
        self.live_inputs = live_inputs
        self._model: RoutingModel | None = None
        self._baseline: tuple[RoutingPlan, tuple, RoutingPlan] | None = None
        # One solve at a time: a HiGHS instance is not safe to share between threads.
        self._lock = threading.Lock()

    # -- the answer ----------------------------------------------------------------------
    def preview(self, request: ControlRequest) -> dict:
        """What `request` would change, checked as POST /api/control checks it (same errors)."""
        value = self.controls.validate(request)
        action, target = request.action, request.target
        head = {"action": action, "target": target, "value": value}
        if action in NO_NETWORK_EFFECT:
            return self._answer(head, "no_effect", NO_NETWORK_EFFECT[action])
        if action == "set_mode" and value == "manual":
            return self._answer(head, "no_effect", "In manual mode the engine only recommends: nothing "
                                                   "is sent to the valves and pumps until an operator applies it.")
        plan, inputs = self.engine.plan, self.engine.plan_inputs
        if plan is None or inputs is None:
            plan, inputs = None, self._live_inputs()
            if inputs is None:
                return self._answer(head, "no_plan", "No plan in force yet on this server: the consequence "
                                                     "could not be estimated.")
            basis = "No plan in force on this server: the plan solved now from live data"
        else:
            head["plan_at"] = iso(inputs.start) if inputs.start is not None else None
            basis = (f"From the plan of {time.strftime('%H:%M:%S', time.gmtime(inputs.start))} UTC"
                     if inputs.start is not None else "From the plan in force")
        current = self._with_current_controls(inputs, plan)
        if action == "set_mode":
            if plan is None:
                try:
                    with self._lock:
                        plan = self.offload(self._solve_one, current)
                except Exception:
                    logger.exception("what-if solve failed")
                    plan = None
                if plan is None or plan.status != "optimal":
                    return self._answer(head, "no_plan", "No plan could be made on this server: the "
                                                         "consequence could not be estimated.")
            return self._auto_mode(head, plan, inputs, basis)
        proposed = self._with_change(current, action, target, value)
        if _bounds(proposed) == _bounds(current):
            return self._answer(head, "unchanged", self.words.unchanged(action, target, value),
                                basis=basis + ".")
        try:
            with self._lock:
                baseline, after, model = self.offload(self._solve_pair, plan, inputs, current, proposed)
        except Exception as error:   # a solver failure is an unknown consequence, never a 500
            logger.exception("what-if solve failed")
            return self._answer(head, "degraded", f"The consequence could not be estimated: the solve "
                                                  f"failed ({error}).", basis=basis + ".")
        basis += (f", {'and ' if plan is None else ''}re-solved with the change over "
                  f"{model.horizon * model.step_h:g} h ({after.solve_ms:.0f} ms); the next plan re-solves on live data.")
        if after.status != "optimal":
            return self._answer(head, after.status, self.words.failed(action, target, value, after.message),
                                basis=basis, solve_ms=round(after.solve_ms, 2))
        return self._diff(head, baseline, after, current, proposed, model, basis)

    # -- inputs -----------------------------------------------------------------------------
    def _live_inputs(self) -> RoutingInputs | None:
        if self.live_inputs is None:
            return None
        try:
            return self.live_inputs()
        except Exception:
            logger.exception("what-if: no inputs from live state")
            return None

    def _with_current_controls(self, inputs: RoutingInputs, plan: RoutingPlan | None) -> RoutingInputs:
        """The plan's inputs with today's operator settings (a control since the plan counts)
        and the plan in force as the flows to hold, as the next re-plan would have them."""
        return dataclasses.replace(
            inputs, isolated=set(self.controls.isolated), link_factor=self.controls.link_factors(),
            previous=dict(plan.flows) if plan else {}, restrictions=dict(inputs.restrictions),
            demand_steps=[dict(step) for step in inputs.demand_steps] if inputs.demand_steps else None)

    @staticmethod
    def _with_change(inputs: RoutingInputs, action: str, target: str, value) -> RoutingInputs:
        isolated, factors = set(inputs.isolated), dict(inputs.link_factor)
        restrictions = dict(inputs.restrictions)
        if action == "isolate":
            isolated.add(target)
            restrictions[target] = f"proposed: isolate {target}"
        elif action == "restore":
            isolated.discard(target)
            restrictions.pop(target, None)
        elif action == "set_valve":
            factors[target] = value / 100
            restrictions[target] = f"proposed: set valve {target} to {value}%"
        elif action == "set_pump":
            factors[target] = pump_speed(value) / 100
            restrictions[target] = f"proposed: set pump {target} {value}"
        return dataclasses.replace(inputs, isolated=isolated, link_factor=factors, restrictions=restrictions)

    # -- solving ----------------------------------------------------------------------------
    def _solve_one(self, inputs: RoutingInputs) -> RoutingPlan:
        return self._the_model().solve(inputs)

    def _the_model(self) -> RoutingModel:
        if self._model is None:
            self._model = self.make_model()
        return self._model

    def _solve_pair(self, plan: RoutingPlan | None, inputs: RoutingInputs, current: RoutingInputs,
                    proposed: RoutingInputs) -> tuple[RoutingPlan, RoutingPlan, RoutingModel]:
        model = self._the_model()
        same_model = (model.horizon, model.step_h) == (self.engine.model.horizon, self.engine.model.step_h)
        if plan is None:
            baseline = model.solve(current)
        elif same_model and _bounds(current) == _bounds(inputs):
            baseline = plan
        else:
            # Kept per plan object (held, so its id cannot be reused) and operator settings.
            key = (_bounds(current), model.horizon)
            cached = self._baseline
            if cached is None or cached[0] is not plan or cached[1] != key:
                cached = self._baseline = (plan, key, model.solve(current))
            baseline = cached[2]
        return baseline, model.solve(proposed), model

    # -- comparing ---------------------------------------------------------------------------
    def _diff(self, head: dict, before: RoutingPlan, after: RoutingPlan, current: RoutingInputs,
              proposed: RoutingInputs, model: RoutingModel, basis: str) -> dict:
        net, name = self.network, self.narrator.name
        sources = [{"node_id": s, "name": name(s), "capacity": net.nodes[s].capacity,
                    "planned": before.sources.get(s, 0.0), "would_be": out,
                    "change": round(out - before.sources.get(s, 0.0), 3)}
                   for s, out in after.sources.items()
                   if abs(out - before.sources.get(s, 0.0)) >= MATERIAL_MLD]
        step_days = model.step_h / 24
        pairs = list(zip(before.steps or [before], after.steps or [after]))
        zones, worse, better = [], [], []
        for z, short in after.shortfall.items():
            was = before.shortfall.get(z, 0.0)
            # The horizon's steps: storage may cover a cut for hours before a zone goes short.
            steps = [a.shortfall.get(z, 0.0) - b.shortfall.get(z, 0.0) for b, a in pairs]
            peak = max(steps, key=abs)
            if abs(peak) < MATERIAL_MLD:
                continue
            demand = after.demand.get(z, 0.0)
            zones.append({"node_id": z, "name": name(z), "demand": round(demand, 3),
                          "planned_supplied": round(before.demand.get(z, demand) - was, 3),
                          "would_supply": round(demand - short, 3),
                          "planned_shortfall": was, "would_shortfall": short,
                          "shortfall_change": round(short - was, 3),
                          "peak_shortfall_change": round(peak, 3),
                          "horizon_shortfall_change_ml": round(sum(steps) * step_days, 3)})
            if z != head["target"] and peak >= SHORTFALL_MLD:
                worse.append((zones[-1], steps))
            elif z != head["target"] and peak <= -SHORTFALL_MLD:
                better.append((zones[-1], steps))
        change = ZoneChange([z["name"] for z, _ in worse], [sum(col) for col in zip(*[s for _, s in worse])],
                            [z["name"] for z, _ in better], [-sum(col) for col in zip(*[s for _, s in better])],
                            model.step_h, any(max(b.shortfall.get(z["node_id"], 0.0) for b, _ in pairs)
                                              >= SHORTFALL_MLD for z, _ in worse))
        links = []
        for link_id, flow in after.flows.items():
            link, was = net.links[link_id], before.flows.get(link_id, 0.0)
            moved = abs(flow - was)
            started_or_stopped = (abs(was) > ON_MLD) != (abs(flow) > ON_MLD) and moved >= MATERIAL_MLD
            if link_id == head["target"] or started_or_stopped or \
                    moved > max(MATERIAL_MLD, self.narrator.deadband * link.capacity):
                links.append({"link_id": link_id, "name": name(link_id), "kind": link.kind,
                             "capacity": link.capacity, "planned": was, "would_be": flow,
                             "change": round(flow - was, 3)})
        links.sort(key=lambda item: -abs(item["change"]))
        actions = [{"kind": a.kind, "target": a.target, "text": a.text, "causes": a.causes}
                   for a in self.narrator.changes(before, current, after, proposed)]
        totals = {"sources_planned": round(sum(before.sources.values()), 3),
                  "sources_would_be": round(sum(after.sources.values()), 3),
                  "storage_draw_planned": self._storage_draw(before, current, model),
                  "storage_draw_would_be": self._storage_draw(after, proposed, model),
                  "supplied_planned": round(sum(before.demand.values()) - sum(before.shortfall.values()), 3),
                  "supplied_would_be": round(sum(after.demand.values()) - sum(after.shortfall.values()), 3),
                  "shortfall_planned": round(sum(before.shortfall.values()), 3),
                  "shortfall_would_be": round(sum(after.shortfall.values()), 3),
                  "horizon_h": model.horizon * model.step_h,
                  "horizon_shortfall_planned_ml": round(sum(sum(b.shortfall.values()) for b, _ in pairs) * step_days, 3),
                  "horizon_shortfall_would_be_ml": round(sum(sum(a.shortfall.values()) for _, a in pairs) * step_days, 3),
                  "horizon_sources_planned_ml": round(sum(sum(b.sources.values()) for b, _ in pairs) * step_days, 3),
                  "horizon_sources_would_be_ml": round(sum(sum(a.sources.values()) for _, a in pairs) * step_days, 3),
                  "storage_end_planned": round(sum(pairs[-1][0].volume_end.values()), 3),
                  "storage_end_would_be": round(sum(pairs[-1][1].volume_end.values()), 3)}
        sentence = self.words.sentence(head["action"], head["target"], head["value"], before, after, change)
        details = [self.words.zone_line(z, model.horizon * model.step_h) for z in zones]
        details += [f"{s['name']}: {mld(s['planned'])} → {mld(s['would_be'])} of {mld(s['capacity'])}"
                    for s in sources]
        details += [f"{item['name']}: {mld(item['planned'])} → {mld(item['would_be'])}"
                    for item in links[:DETAIL_LINKS]]
        return self._answer(head, after.status, sentence, basis=basis, details=details, sources=sources,
                            zones=zones, links=links, actions=actions, totals=totals,
                            solve_ms=round(after.solve_ms, 2))

    def _storage_draw(self, plan: RoutingPlan, inputs: RoutingInputs, model: RoutingModel) -> float:
        """MLD the first step takes out of the reservoirs (negative: it fills them)."""
        step_days = model.step_h / 24
        draw = sum((inputs.volume.get(r, self.network.nodes[r].volume) - end) / step_days
                   for r, end in plan.volume_end.items())
        return round(draw, 3)

    # -- set_mode auto ---------------------------------------------------------------------------
    def _auto_mode(self, head: dict, plan: RoutingPlan, inputs: RoutingInputs, basis: str) -> dict:
        """What auto mode would command: the plan's valve openings and pump states where they
        differ from the settings operators left (a setting an operator made is never commanded back)."""
        if self.controls.mode == "auto":
            return self._answer(head, "unchanged", "Already in auto mode: nothing changes.", basis=basis + ".")
        settings, isolated = self.controls.link_settings(), self.controls.isolated
        operator_set = set(self.controls.valve_open) | set(self.controls.pump_speed) | isolated
        commands = []
        for link_id, flow in plan.flows.items():
            link = self.network.links[link_id]
            if link_id in operator_set or link.from_ in isolated or link.to in isolated:
                continue
            if link.kind == "valve" and link.capacity:
                now, wanted = settings[link_id]["opening"], round(100 * abs(flow) / link.capacity, 1)
                if abs(wanted - now) > 100 * self.narrator.deadband:
                    commands.append({"link_id": link_id, "name": self.narrator.name(link_id), "kind": "valve",
                                     "now": now, "plan": wanted, "text": f"valve {self.narrator.name(link_id)} "
                                                                         f"{now:.0f}% → {wanted:.0f}%"})
            elif link.kind == "pump":
                running, wanted = settings[link_id]["running"], abs(flow) > ON_MLD
                if running != wanted:
                    commands.append({"link_id": link_id, "name": self.narrator.name(link_id), "kind": "pump",
                                     "now": "on" if running else "off", "plan": "on" if wanted else "off",
                                     "text": f"pump {self.narrator.name(link_id)} "
                                             f"{'stopped' if running else 'started'}"})
        short = [(z, s) for z, s in plan.shortfall.items() if s >= SHORTFALL_MLD]
        served = ("; the plan serves every zone in full" if not short else
                  f"; the plan leaves {names([self.narrator.name(z) for z, _ in short])} short by "
                  f"{mld(sum(s for _, s in short))}")
        valves = sum(c["kind"] == "valve" for c in commands)
        pumps = len(commands) - valves
        if commands:
            counted = " and ".join(f"{n} {kind}{'s' if n != 1 else ''}" for n, kind in ((valves, "valve"),
                                                                                       (pumps, "pump")) if n)
            sentence = (f"Switching to auto mode lets the engine move {counted} from their current settings "
                        f"to the plan's: {', '.join(c['text'] for c in commands[:3])}"
                        f"{' and more' if len(commands) > 3 else ''}{served}.")
        else:
            sentence = (f"Switching to auto mode changes no valve or pump now: the plan matches the current "
                        f"settings{served}. From then on the engine sends its decisions without an operator's Apply.")
        return self._answer(head, "optimal", sentence, basis=basis + ", compared with the valves and pumps as "
                                                                     "operators left them.",
                            details=[c["text"] for c in commands], commands=commands)

    @staticmethod
    def _answer(head: dict, status: str, sentence: str, *, basis: str = "",
                details: list[str] | None = None, **parts) -> dict:
        """`status`: the what-if plan's (optimal, infeasible, degraded), or unchanged, no_effect,
        no_plan; `feasible` is null when there is no plan to tell."""
        feasible = None if status == "no_plan" else status not in ("infeasible", "degraded")
        return {**head, "status": status, "feasible": feasible, "sentence": sentence, "basis": basis,
                "details": details or [], **parts}
