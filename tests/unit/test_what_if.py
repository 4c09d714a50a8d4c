"""What-if previews on the bundled network: a control's consequence taken from the plan, changing nothing."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.domain.clock import ManualClock
from app.errors import InvalidInput, NotFound
from app.models import ControlRequest
from app.services.alerts import AlertBook
from app.services.controls import ControlService
from app.services.narration import Narrator
from app.services.network import Network
from app.services.routing import RoutingInputs, RoutingModel
from app.services.what_if import WhatIf
from tests.unit.networks import link, network, node

BUNDLED = Path(__file__).resolve().parents[2] / "app" / "data" / "bengaluru.json"
HORIZON = 24
NOW = 1_780_000_000.0


@pytest.fixture(scope="module")
def bundled():
    return Network.from_dict(json.loads(BUNDLED.read_text()))


class Rig:
    """A WhatIf over a stand-in engine holding a real plan of `network`, and real controls."""

    def __init__(self, net: Network, horizon: int = HORIZON, what_if_horizon: int | None = None,
                 demand_factor: float = 1.0):
        self.network, self.demand_factor = net, demand_factor
        self.events = []
        clock = ManualClock()
        self.controls = ControlService(net, AlertBook(self.events.append, clock=clock), self.events.append,
                                       clock=clock)
        self.engine = SimpleNamespace(model=RoutingModel(net, horizon=horizon), plan=None, plan_inputs=None)
        self.replan()
        self.what_if = WhatIf(net, self.engine, self.controls, Narrator(net, 0.10),
                              make_model=lambda: RoutingModel(net, horizon=what_if_horizon or horizon))

    def replan(self):
        """What the engine does after a control: solve on the operators' settings."""
        inputs = RoutingInputs(demand={z.id: z.demand * self.demand_factor for z in self.network.of_kind("zone")},
                               start=NOW,
                               isolated=set(self.controls.isolated), link_factor=self.controls.link_factors(),
                               previous=dict(self.engine.plan.flows) if self.engine.plan else {})
        self.engine.plan, self.engine.plan_inputs = self.engine.model.solve(inputs), inputs
        assert self.engine.plan.status == "optimal"

    def preview(self, action, target=None, value=None):
        return self.what_if.preview(ControlRequest(action=action, target=target, value=value))

    def apply(self, action, target=None, value=None):
        self.controls.apply(ControlRequest(action=action, target=target, value=value), "ops")
        self.replan()


def source(preview, node_id):
    return next(s for s in preview["sources"] if s["node_id"] == node_id)


def test_isolating_a_source_cuts_its_planned_output_and_the_zones_short_sum_to_the_deficit(bundled):
    # A day at 1.2 x base demand: more than the other sources and storage can give without Stage IV.
    rig = Rig(bundled, demand_factor=1.2)
    planned = rig.engine.plan.sources["SRC_CWSS_4"]
    assert planned > 100
    preview = rig.preview("isolate", "SRC_CWSS_4")
    assert preview["status"] == "optimal" and preview["feasible"] is True
    cwss4 = source(preview, "SRC_CWSS_4")
    assert (cwss4["planned"], cwss4["would_be"]) == (planned, 0.0)
    totals = preview["totals"]
    deficit = totals["horizon_shortfall_would_be_ml"] - totals["horizon_shortfall_planned_ml"]
    assert deficit > 10, totals
    assert sum(z["horizon_shortfall_change_ml"] for z in preview["zones"]) == pytest.approx(deficit, abs=0.5)
    # Water balance over the horizon: what no longer reaches the zones is what the sources
    # lose, less what storage gives up in its place.
    source_drop = totals["horizon_sources_planned_ml"] - totals["horizon_sources_would_be_ml"]
    storage_given = totals["storage_end_planned"] - totals["storage_end_would_be"]
    assert deficit == pytest.approx(source_drop - storage_given, abs=0.5)
    # And in the first step, which is applied now.
    first = totals["supplied_planned"] - totals["supplied_would_be"]
    assert sum(z["shortfall_change"] for z in preview["zones"]) == pytest.approx(first, abs=0.5)
    assert first == pytest.approx(totals["sources_planned"] - totals["sources_would_be"]
                                  - (totals["storage_draw_would_be"] - totals["storage_draw_planned"]), abs=0.5)
    # Taken from the plan: the same solver with the isolation leaves the same water short.
    direct = RoutingModel(bundled, horizon=HORIZON).solve(
        RoutingInputs(demand=rig.engine.plan_inputs.demand, start=NOW, isolated={"SRC_CWSS_4"}))
    assert sum(sum(step.shortfall.values()) for step in direct.steps) / 24 == pytest.approx(
        totals["horizon_shortfall_would_be_ml"], abs=0.5)
    sentence = preview["sentence"]
    assert sentence.startswith(f"Isolating Cauvery WSS Stage IV cuts {planned:.0f} MLD; zones ")
    assert all(z["name"] in sentence for z in preview["zones"] if z["peak_shortfall_change"] >= 1)
    assert f"{deficit:,.0f} ML over 24 h" in sentence
    zone = preview["zones"][0]
    line = next(d for d in preview["details"] if d.startswith(zone["name"] + ": "))
    assert f"up to {zone['peak_shortfall_change']:.0f} MLD more shortfall within 24 h" in line
    assert any(a["kind"] == "isolate_source" for a in preview["actions"])


def test_a_source_the_others_can_replace_leaves_no_zone_short(bundled):
    rig = Rig(bundled)
    preview = rig.preview("isolate", "SRC_TG_HALLI")
    cut = rig.engine.plan.sources["SRC_TG_HALLI"]
    if cut > 0.5:
        assert preview["sentence"].startswith(f"Isolating T.G. Halli (Arkavathy) reservoir cuts {cut:.0f} MLD")
    assert [z for z in preview["zones"] if z["shortfall_change"] > 0] == []
    assert "no zone" in preview["sentence"]


def test_stopping_a_pump_on_a_path_cuts_what_it_pumps(bundled):
    rig = Rig(bundled)
    pumped = rig.engine.plan.flows["P_TAT_SOUTH"]
    assert pumped > 50
    preview = rig.preview("set_pump", "P_TAT_SOUTH", "off")
    assert preview["value"] == "off"
    pump = next(item for item in preview["links"] if item["link_id"] == "P_TAT_SOUTH")
    assert (pump["planned"], pump["would_be"]) == (pumped, 0.0)
    assert preview["sentence"].startswith(
        f"Stopping pump Tataguni to southern trunk cuts {pumped:.0f} MLD of pumped flow")
    # The southern trunk is the South zone's main path: it goes short over the day, and is named.
    south = next(z for z in preview["zones"] if z["node_id"] == "Z_SOUTH")
    assert south["peak_shortfall_change"] >= 1 and "South" in preview["sentence"].split(";", 1)[1]
    # The rest of the network still balances: every zone's supply is demand less shortfall.
    for zone in preview["zones"]:
        assert zone["would_supply"] == pytest.approx(zone["demand"] - zone["would_shortfall"], abs=0.01)


def test_restore_undoes_an_isolation(bundled):
    rig = Rig(bundled)
    before = dict(rig.engine.plan.sources)
    shortfall_before = sum(rig.engine.plan.shortfall.values())
    rig.apply("isolate", "SRC_CWSS_4")
    assert rig.engine.plan.sources["SRC_CWSS_4"] == 0.0
    preview = rig.preview("restore", "SRC_CWSS_4")
    cwss4 = source(preview, "SRC_CWSS_4")
    assert cwss4["planned"] == 0.0
    assert cwss4["would_be"] == pytest.approx(before["SRC_CWSS_4"], abs=1.0)
    assert preview["totals"]["shortfall_would_be"] == pytest.approx(shortfall_before, abs=0.5)
    assert all(z["shortfall_change"] < 0 for z in preview["zones"])
    assert preview["sentence"].startswith(f"Restoring Cauvery WSS Stage IV brings back {cwss4['would_be']:.0f} MLD")
    # Isolating what is isolated already changes nothing, and says so without a solve.
    again = rig.preview("isolate", "SRC_CWSS_4")
    assert again["status"] == "unchanged" and "already isolated" in again["sentence"]


def test_a_preview_changes_nothing(bundled):
    rig = Rig(bundled)
    rig.apply("set_valve", "V_CJF_WEST", 60)
    plan, inputs = rig.engine.plan, rig.engine.plan_inputs
    flows, state = dict(plan.flows), (set(rig.controls.isolated), dict(rig.controls.valve_open),
                                      dict(rig.controls.pump_speed), rig.controls.mode)
    audit, events = list(rig.controls.audit), list(rig.events)
    for args in (("isolate", "SRC_CWSS_5"), ("set_pump", "P_TAT_WEST", "off"), ("set_valve", "V_CJF_WEST", 0),
                 ("restore", "V_CJF_WEST"), ("set_mode", None, "auto")):
        rig.preview(*args)
    assert rig.engine.plan is plan and rig.engine.plan_inputs is inputs and plan.flows == flows
    assert inputs.isolated == set() and inputs.link_factor == {"V_CJF_WEST": 0.6}
    assert (set(rig.controls.isolated), dict(rig.controls.valve_open), dict(rig.controls.pump_speed),
            rig.controls.mode) == state
    assert rig.controls.audit == audit and rig.events == events


def test_a_bad_control_is_refused_as_apply_refuses_it(bundled):
    rig = Rig(bundled)
    with pytest.raises(InvalidInput) as error:
        rig.preview("set_valve", "V_CJF_WEST", 140)
    assert error.value.details[0]["field"] == "value"
    with pytest.raises(InvalidInput):
        rig.preview("set_pump", "V_CJF_WEST", "off")      # a valve, not a pump
    with pytest.raises(NotFound):
        rig.preview("isolate", "NOWHERE")
    with pytest.raises(InvalidInput):
        rig.preview("set_mode", None, "sideways")


def test_a_one_step_preview_compares_with_the_plan_re_solved_on_one_step(bundled):
    """A network too big for the whole horizon is previewed on one step, against one step."""
    rig = Rig(bundled, horizon=HORIZON, what_if_horizon=1)
    preview = rig.preview("isolate", "SRC_CWSS_4")
    one_step = RoutingModel(bundled, horizon=1)
    demand = rig.engine.plan_inputs.demand
    base = one_step.solve(RoutingInputs(demand=demand, start=NOW))
    cut = one_step.solve(RoutingInputs(demand=demand, start=NOW, isolated={"SRC_CWSS_4"}))
    assert source(preview, "SRC_CWSS_4")["planned"] == pytest.approx(base.sources["SRC_CWSS_4"], abs=0.5)
    assert preview["totals"]["shortfall_would_be"] == pytest.approx(sum(cut.shortfall.values()), abs=0.5)
    assert "over 1 h" in preview["basis"]


def small_city():
    """S feeds zone W through a valve (capacity 200) and zone E through a pump."""
    return network([node("S", "source", capacity=400), node("W", "zone", demand=80, priority=1),
                    node("E", "zone", demand=0, priority=1)],
                   [link("V", "S", "W", 200, kind="valve"), link("PE", "S", "E", 100, kind="pump", energy=0.1)])


def test_auto_mode_names_what_the_engine_would_command_away_from_the_operators_settings():
    rig = Rig(small_city(), horizon=1)
    preview = rig.preview("set_mode", None, "auto")
    # The plan needs 80 of V's 200 MLD (40%) and no pumping to E, which is running (its default).
    assert {(c["link_id"], c["now"], c["plan"]) for c in preview["commands"]} == {("V", 100.0, 40.0),
                                                                                   ("PE", "on", "off")}
    assert preview["sentence"].startswith("Switching to auto mode lets the engine move 1 valve and 1 pump")
    assert "every zone in full" in preview["sentence"]
    # A setting an operator made is never commanded back, so auto mode leaves it.
    rig.apply("set_pump", "PE", "off")
    preview = rig.preview("set_mode", None, "auto")
    assert [c["link_id"] for c in preview["commands"]] == ["V"]
    rig.apply("set_mode", None, "auto")
    assert rig.preview("set_mode", None, "auto")["status"] == "unchanged"


def test_without_a_plan_the_consequence_is_not_estimated(bundled):
    rig = Rig(bundled)
    rig.engine.plan = rig.engine.plan_inputs = None
    preview = rig.preview("isolate", "SRC_CWSS_4")
    assert preview["status"] == "no_plan" and preview["feasible"] is None
    assert "could not be estimated" in preview["sentence"]


def test_the_one_step_baseline_follows_a_new_plan(bundled):
    """The one-step re-solve of the plan in force is kept per plan: a new plan is re-solved."""
    rig = Rig(bundled, horizon=HORIZON, what_if_horizon=1)
    first = rig.preview("isolate", "SRC_CWSS_4")["totals"]
    assert first["supplied_planned"] == pytest.approx(bundled.total_demand() - first["shortfall_planned"], abs=0.5)
    rig.demand_factor = 1.2
    rig.replan()
    second = rig.preview("isolate", "SRC_CWSS_4")["totals"]
    assert second["supplied_planned"] + second["shortfall_planned"] == pytest.approx(1.2 * bundled.total_demand(),
                                                                                      abs=0.5)
