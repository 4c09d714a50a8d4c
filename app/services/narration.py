"""Narration: the material differences between two plans, as actions with causes.

A change is material when a source or pump starts or stops, a link's flow
moves by more than `deadband` of its capacity, a zone's shortfall appears or
clears, something is isolated or excluded, or a leak hold begins or ends.
Anything smaller updates the plan silently. Causes come from one function,
`causes()`, which names the real limit: an operator restriction (set_valve,
set_pump or isolate), a capacity limit, a source outage, a quality
exclusion, a leak, or priority.
"""
from __future__ import annotations

from app.domain.records import Action, ControlOrder
from app.services.network import Network
from app.services.routing import RoutingInputs, RoutingPlan

# A flow (MLD) at or below this is "off": sources and pumps start or stop across it.
ON_MLD = 0.5
# A zone's shortfall (MLD) that counts as a cut.
SHORTFALL_MLD = 1.0
# A link within this much (MLD) of its bound is at its limit.
AT_LIMIT_MLD = 0.5
# Order in which changes lead a decision (the first present names it).
IMPORTANCE = ("isolate_source", "exclude_source", "leak_hold", "zone_shortfall", "pump_stop", "pump_start",
              "source_stop", "source_start", "zone_restored", "leak_release", "restore_source",
              "valve_setting", "reroute")


class Narrator:
    def __init__(self, network: Network, deadband: float):
        self.network = network
        self.deadband = deadband

    def name(self, element_id: str) -> str:
        node = self.network.nodes.get(element_id)
        if node is not None:
            return node.name
        link = self.network.links.get(element_id)
        if link is None:
            return element_id
        net = self.network
        return link.name or f"{net.nodes[link.from_].name} → {net.nodes[link.to].name}"

    # -- what changed ------------------------------------------------------------------
    def changes(self, old: RoutingPlan | None, old_inputs: RoutingInputs | None,
                new: RoutingPlan, inputs: RoutingInputs) -> list[Action]:
        """Material changes from `old` to `new`, most important first."""
        net = self.network
        before = old_inputs or RoutingInputs(demand={})
        actions: list[Action] = []
        for source_id in sorted(inputs.isolated - before.isolated):
            if source_id in net.nodes and net.nodes[source_id].kind == "source":
                was = old.sources.get(source_id, 0.0) if old else 0.0
                actions.append(Action("isolate_source", source_id,
                                      f"Take {self.name(source_id)} out of supply ({was:.0f} → 0 MLD)"))
        for source_id in sorted(set(inputs.excluded_sources) - set(before.excluded_sources)):
            actions.append(Action("exclude_source", source_id,
                                  f"Take {self.name(source_id)} out of supply (0 MLD)"))
        for source_id in sorted((before.isolated - inputs.isolated) | (set(before.excluded_sources)
                                                                       - set(inputs.excluded_sources))):
            if source_id in net.nodes and net.nodes[source_id].kind == "source":
                actions.append(Action("restore_source", source_id, f"Bring {self.name(source_id)} back into supply"))
        for zone_id in sorted(set(inputs.held) - set(before.held)):
            metered, held = inputs.held[zone_id]
            actions.append(Action("leak_hold", zone_id, f"Serve {self.name(zone_id)} {held:.0f} MLD, not the "
                                                        f"metered {metered:.0f} MLD"))
        for zone_id in sorted(set(before.held) - set(inputs.held)):
            actions.append(Action("leak_release", zone_id, f"Serve {self.name(zone_id)} its full demand again"))
        for source_id, output in new.sources.items():
            was = old.sources.get(source_id, 0.0) if old else 0.0
            if was <= ON_MLD < output and source_id not in inputs.isolated:
                actions.append(Action("source_start", source_id, f"Start {self.name(source_id)} at {output:.0f} MLD"))
            elif output <= ON_MLD < was and not any(a.target == source_id for a in actions):
                actions.append(Action("source_stop", source_id, f"Stop {self.name(source_id)} (was {was:.0f} MLD)"))
        if old is not None:
            for link_id, flow in new.flows.items():
                for action in self._link_change(link_id, old.flows.get(link_id, 0.0), flow):
                    if link_id in inputs.restrictions or link_id in inputs.isolated:
                        action.command = None     # the operator has set this one already
                    actions.append(action)
        for zone_id, short in new.shortfall.items():
            was = old.shortfall.get(zone_id, 0.0) if old else 0.0
            demand = new.demand.get(zone_id, 0.0)
            if short >= SHORTFALL_MLD and (was < SHORTFALL_MLD or abs(short - was) > self.deadband * demand):
                actions.append(Action("zone_shortfall", zone_id,
                                      f"Cut {self.name(zone_id)} by {short:.0f} MLD"
                                      + (f" ({short / demand:.0%} of demand)" if demand else "")))
            elif was >= SHORTFALL_MLD > short:
                actions.append(Action("zone_restored", zone_id, f"Restore full supply to {self.name(zone_id)}"))
        for action in actions:
            action.causes = self.causes(action.target, new, inputs)
        actions.sort(key=lambda a: IMPORTANCE.index(a.kind))
        return actions

    def _link_change(self, link_id: str, was: float, flow: float) -> list[Action]:
        link = self.network.links[link_id]
        label = self.name(link_id)
        if link.kind == "pump" and was > ON_MLD >= flow:
            return [Action("pump_stop", link_id, f"Stop pump {label} (was {was:.0f} MLD)",
                           ControlOrder("set_pump", link_id, "off"))]
        if link.kind == "pump" and was <= ON_MLD < flow:
            return [Action("pump_start", link_id, f"Start pump {label} at {flow:.0f} MLD",
                           ControlOrder("set_pump", link_id, "on"))]
        if abs(flow - was) <= self.deadband * link.capacity:
            return []
        if link.kind == "valve":
            opening = round(100 * abs(flow) / link.capacity, 1) if link.capacity else 0.0
            return [Action("valve_setting", link_id, f"Set valve {label} to {opening:.0f}% "
                           f"({was:.0f} → {flow:.0f} MLD)",
                           ControlOrder("set_valve", link_id, opening))]
        verb = "Raise" if flow > was else "Lower"
        return [Action("reroute", link_id, f"{verb} {label} from {was:.0f} to {flow:.0f} MLD")]

    # -- why ----------------------------------------------------------------------------
    def causes(self, target: str, plan: RoutingPlan, inputs: RoutingInputs) -> list[str]:
        """The real limits behind a change at `target` (zone, source or link), in words."""
        net = self.network
        found: list[str] = []
        node = net.nodes.get(target)
        link = net.links.get(target)
        if target in inputs.excluded_sources:
            found.append(f"quality exclusion: {inputs.excluded_sources[target]}")
        if target in inputs.outages:
            found.append(f"source outage: {inputs.outages[target]}")
        if target in inputs.isolated or target in inputs.restrictions:
            found.append(f"operator restriction: {inputs.restrictions.get(target, 'isolated ' + target)}")
        if target in inputs.held:
            metered, held = inputs.held[target]
            found.append(f"leak: {self.name(target)} is served {held:.0f} MLD of a metered {metered:.0f} MLD")
        if link is not None:
            downstream = net.nodes[link.to]
            if downstream.kind == "zone" and link.to in inputs.held:
                found += self.causes(link.to, plan, inputs)
            if abs(plan.flows.get(target, 0.0)) >= self._bound(link, inputs) - AT_LIMIT_MLD and target not in inputs.restrictions:
                found.append(f"capacity: {self.name(target)} is full at {self._bound(link, inputs):.0f} MLD")
        if node is not None and node.kind == "zone" and plan.shortfall.get(target, 0.0) >= SHORTFALL_MLD:
            found += self._shortfall_causes(target, plan, inputs)
        return list(dict.fromkeys(found))

    def _bound(self, link, inputs: RoutingInputs) -> float:
        if {link.id, link.from_, link.to} & inputs.isolated:
            return 0.0
        return link.capacity * inputs.link_factor.get(link.id, 1.0)

    def _shortfall_causes(self, zone_id: str, plan: RoutingPlan, inputs: RoutingInputs) -> list[str]:
        net = self.network
        found = []
        feeds = net.links_into(zone_id)
        full = [link for link in feeds if abs(plan.flows.get(link.id, 0.0)) >= self._bound(link, inputs) - AT_LIMIT_MLD]
        for link in full:
            if link.id in inputs.restrictions or {link.id, link.from_} & inputs.isolated:
                text = inputs.restrictions.get(link.id) or f"isolated {link.id if link.id in inputs.isolated else link.from_}"
                found.append(f"operator restriction: {text}, so {self.name(link.id)} carries at most "
                             f"{self._bound(link, inputs):.0f} of its {link.capacity:.0f} MLD")
        if feeds and len(full) == len(feeds) and not found:
            found.append("capacity: every link into " + self.name(zone_id) + " is full ("
                         + ", ".join(f"{self.name(link.id)} {self._bound(link, inputs):.0f} MLD" for link in feeds) + ")")
        for link in feeds:
            upstream = net.nodes[link.from_]
            if upstream.kind == "reservoir" and link not in full:
                end = plan.volume_end.get(upstream.id)
                if end is not None and upstream.min_volume is not None and end <= upstream.min_volume + 0.01:
                    found.append(f"capacity: reservoir {upstream.name} is drawn to its minimum "
                                 f"{upstream.min_volume:.0f} ML")
        for source_id, reason in inputs.excluded_sources.items():
            found.append(f"quality exclusion: {self.name(source_id)} is out ({reason})")
        for source_id, reason in inputs.outages.items():
            found.append(f"source outage: {self.name(source_id)} ({reason})")
        for element in sorted(inputs.isolated):
            if element in net.nodes and net.nodes[element].kind == "source":
                found.append(f"operator restriction: {inputs.restrictions.get(element, 'isolated ' + element)}")
        if not found:
            zone = net.nodes[zone_id]
            senior = sorted({net.nodes[z].priority for z, s in plan.shortfall.items()
                             if s < SHORTFALL_MLD and net.nodes[z].priority > zone.priority}, reverse=True)
            supplied = sum(plan.sources.values())
            found.append(f"priority: sources deliver {supplied:.0f} MLD against demand "
                         f"{sum(plan.demand.values()):.0f} MLD; {zone.name} has priority {zone.priority}"
                         + (f", zones of priority {', '.join(map(str, senior))} are served first" if senior else ""))
        return found
