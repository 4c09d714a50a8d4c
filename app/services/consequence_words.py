"""A previewed control's consequence in one line, for the operator's confirmation.

"Isolating Cauvery WSS Stage IV cuts 770 MLD; zones RR Nagar and Yelahanka /
Dasarahalli short by up to 180 MLD after 3 h, 1,210 ML over 24 h." Built from
the plan in force (`before`), the plan with the control (`after`) and how
the zones' shortfall changes over the horizon (`ZoneChange`, from
app/services/what_if.py). The cut is the first step's, which is what is
applied now; the zones' shortfall is the whole horizon's, since storage can
cover a cut for hours before a zone goes short.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from app.services.controls import pump_speed
from app.services.narration import ON_MLD, SHORTFALL_MLD
from app.services.network import Network
from app.services.routing import RoutingPlan


def mld(value: float) -> str:
    return f"{value:.0f} MLD"


def names(items: list[str]) -> str:
    """"West", "West and RR Nagar", "West, South and RR Nagar"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def through(network: Network, plan: RoutingPlan, element: str) -> float:
    """MLD the plan moves through a link, out of a source, or into any other node."""
    if element in network.links:
        return abs(plan.flows.get(element, 0.0))
    if network.nodes[element].kind == "source":
        return plan.sources.get(element, 0.0)
    return sum(abs(plan.flows.get(link.id, 0.0)) for link in network.links_into(element))


@dataclass
class ZoneChange:
    """Zones going short (`short`) or getting water back (`back`), other than the target,
    and their summed change per step of the horizon (MLD, positive)."""
    short: list[str]
    short_steps: list[float]
    back: list[str]
    back_steps: list[float]
    step_h: float
    already_short: bool = False     # some of `short` are short in the plan in force too

    def tail(self, moved: bool, made_up: str, other: bool = False) -> str:
        """"; zones West and RR Nagar short by up to 120 MLD after 3 h, 300 ML over 24 h.",
        who gets water back, or that none goes short."""
        parts = []
        if self.short:
            parts.append(f"{'zone' if len(self.short) == 1 else 'zones'} {names(self.short)} short by "
                         + self._amount(self.short_steps) + (" more" if self.already_short else "")
                         + self._when(self.short_steps))
        if self.back:
            parts.append(f"{names(self.back)} {'gets' if len(self.back) == 1 else 'get'} "
                         + self._amount(self.back_steps) + " more" + self._when(self.back_steps))
        if parts:
            return "; " + "; ".join(parts) + "."
        if moved and made_up:
            return f"; {made_up}, so no zone goes short."
        return f"; no {'other ' if other else ''}zone's supply changes."

    def _amount(self, steps: list[float]) -> str:
        return mld(max(steps)) if len(steps) == 1 else f"up to {mld(max(steps))}"

    def _when(self, steps: list[float]) -> str:
        if len(steps) == 1:
            return ""
        first = next((t for t, value in enumerate(steps) if value >= SHORTFALL_MLD), 0)
        total = sum(steps) * self.step_h / 24
        return (f" after {first * self.step_h:g} h" if first else "") + \
            f", {total:,.0f} ML over {len(steps) * self.step_h:g} h"


class ConsequenceWords:
    def __init__(self, network: Network, name: Callable[[str], str]):
        self.network = network
        self.name = name

    def sentence(self, action: str, target: str, value, before: RoutingPlan, after: RoutingPlan,
                 zones: ZoneChange) -> str:
        net, name = self.network, self.name(target)
        node = net.nodes.get(target)
        if action == "isolate" and node is not None and node.kind == "source":
            cut = before.sources.get(target, 0.0) - after.sources.get(target, 0.0)
            return f"Isolating {name} cuts {mld(cut)}" + zones.tail(
                cut > ON_MLD, "the other sources and storage make it up")
        if action == "isolate" and node is not None and node.kind == "zone":
            demand = before.demand.get(target, 0.0)
            supplied = demand - before.shortfall.get(target, 0.0)
            return (f"Isolating {name} cuts its whole supply, {mld(supplied)} of {mld(demand)} demand"
                    + zones.tail(False, "", other=True))
        now = through(net, before, target)
        if action == "isolate":
            return f"Isolating {name} stops {mld(now)} through it" + zones.tail(
                now > ON_MLD, "the plan re-routes it")
        if action == "set_pump" and pump_speed(value) == 0:
            return f"Stopping pump {name} cuts {mld(now)} of pumped flow" + zones.tail(
                now > ON_MLD, "the plan moves it to other paths")
        if action in ("set_pump", "set_valve"):
            percent = pump_speed(value) if action == "set_pump" else value
            flow = abs(after.flows.get(target, 0.0))
            what = "pump" if action == "set_pump" else "valve"
            return (f"Setting {what} {name} to {percent:g}% limits it to "
                    f"{mld(net.links[target].capacity * percent / 100)}; the plan would move {mld(flow)} "
                    f"through it (now {mld(now)})") + zones.tail(abs(flow - now) > ON_MLD,
                                                                  "the rest is re-routed")
        back = through(net, after, target) - now     # restore
        return (f"Restoring {name} " + (f"brings back {mld(back)}" if back > ON_MLD else "changes no flow")
                + zones.tail(False, ""))

    def zone_line(self, zone: dict, horizon_h: float) -> str:
        """"RR Nagar: short by 100 of 150 MLD now (plan: 0 MLD); up to 120 MLD more shortfall within 24 h"."""
        now, peak = zone["shortfall_change"], zone["peak_shortfall_change"]
        later = (f"up to {mld(abs(peak))} {'more' if peak > 0 else 'less'} shortfall within {horizon_h:g} h"
                 if abs(peak - now) >= ON_MLD else "")
        if abs(now) < ON_MLD:
            return f"{zone['name']}: {later} (none now)"
        line = (f"{zone['name']}: short by {zone['would_shortfall']:.0f} of {mld(zone['demand'])} now "
                f"(plan: {mld(zone['planned_shortfall'])})")
        return line + (f"; {later}" if later else "")

    def failed(self, action: str, target: str, value, message: str) -> str:
        return (f"{self.verb(action, target, value)}: {message or 'no plan'}; with it no plan meets every "
                f"bound, so the engine would keep the last good plan.")

    def verb(self, action: str, target: str, value) -> str:
        name = self.name(target)
        if action == "set_pump":
            return f"Stopping pump {name}" if pump_speed(value) == 0 else f"Setting pump {name} {value}"
        return {"isolate": f"Isolating {name}", "restore": f"Restoring {name}",
                "set_valve": f"Setting valve {name} to {value}%"}[action]

    def unchanged(self, action: str, target: str, value) -> str:
        name = self.name(target)
        return {"isolate": f"{name} is already isolated", "restore": f"{name} is not isolated",
                "set_valve": f"Valve {name} is already at {value}%",
                "set_pump": f"Pump {name} is already {value}"}[action] + ": the plan stays as it is."

