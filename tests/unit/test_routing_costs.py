"""What the plan says besides its flows: each step's start, tariff, energy and cost; the cost
terms that choose between sources; outages, valve factors, the reserve, and a plan's copy."""
from __future__ import annotations

import dataclasses
import math

import pytest

from app.services.routing import RoutingInputs, RoutingModel, RoutingPlan, _clean, horizon_within
from tests.unit.networks import link, network, node

T0 = 1_700_000_000.0


def one_source(source_energy=0.2, pump_energy=0.50044, cost=10.0):
    return network([node("S", "source", capacity=100, cost=cost, energy=source_energy),
                    node("Z", "zone", demand=24, priority=1)],
                   [link("P", "S", "Z", 100, kind="pump", energy=pump_energy)])


def test_each_step_reports_its_energy_and_cost_rounded_to_a_tenth():
    plan = RoutingModel(one_source()).solve(RoutingInputs(demand={}, tariff=[8.0]))
    [step] = plan.steps
    # 24 MLD for 1 h = 1 ML = 1000 m3: 500.44 kWh pumped + 200 kWh at the source.
    assert step.energy_kwh == 700.4
    # 700.44 kWh x 8 Rs/kWh + 10 Rs/ML x 1 ML
    assert step.cost == 5613.5
    assert step.tariff == 8.0 and isinstance(step.tariff, float)


def test_steps_start_one_step_apart_and_take_their_tariff():
    model = RoutingModel(one_source(), horizon=5, step_h=0.5)
    plan = model.solve(RoutingInputs(demand={}, tariff=[6, 9, 8], start=T0))
    assert [s.start for s in plan.steps] == [T0, T0 + 1800, T0 + 3600, T0 + 5400, T0 + 7200]
    assert [s.tariff for s in plan.steps] == [6.0, 9.0, 8.0, 8.0, 8.0]    # the last one carries on
    assert plan.step_h == 0.5
    longer = model.solve(RoutingInputs(demand={}, tariff=[1, 2, 3, 4, 5, 6, 7]))
    assert [s.tariff for s in longer.steps] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [s.start for s in longer.steps] == [None] * 5
    flat = model.solve(RoutingInputs(demand={}))
    assert [s.tariff for s in flat.steps] == [7.0] * 5


def two_sources(**s1):
    """Z can be fed by S1 (free water, but see its energy) or S2 (5000 Rs/ML, by gravity)."""
    pump = s1.pop("pump", 0.0)
    return network([node("S1", "source", capacity=100, cost=0.0, **s1),
                    node("S2", "source", capacity=100, cost=5000.0),
                    node("Z", "zone", demand=24, priority=1)],
                   [link("a", "S1", "Z", 100, kind="pump", energy=pump),
                    link("b", "S2", "Z", 100)])


@pytest.mark.parametrize("energy_at", ["pump", "energy"])
def test_pumping_energy_at_the_tariff_is_weighed_against_water_cost(energy_at):
    # 1 kWh/m3 at 7 Rs/kWh is 7000 Rs/ML: dearer than S2's 5000 Rs/ML.
    plan = RoutingModel(two_sources(**{energy_at: 1.0})).solve(RoutingInputs(demand={}))
    assert plan.sources == {"S1": 0.0, "S2": 24.0} and plan.shortfall == {"Z": 0.0}
    # At 4 Rs/kWh it is 4000 Rs/ML, and S1 wins.
    cheap = RoutingModel(two_sources(**{energy_at: 1.0})).solve(RoutingInputs(demand={}, tariff=[4.0]))
    assert cheap.sources == {"S1": 24.0, "S2": 0.0}


def test_a_source_in_outage_gives_only_what_it_has():
    net = network([node("S1", "source", capacity=100, cost=1), node("S2", "source", capacity=100, cost=50),
                   node("Z", "zone", demand=80, priority=1)],
                  [link("a", "S1", "Z", 100), link("b", "S2", "Z", 100)])
    plan = RoutingModel(net).solve(RoutingInputs(demand={}, available={"S1": 30.0}, outages={"S1": "low"}))
    assert plan.sources == {"S1": 30.0, "S2": 50.0}
    # An availability above capacity does not raise the capacity.
    plan = RoutingModel(net).solve(RoutingInputs(demand={"Z": 150}, available={"S1": 500.0}))
    assert plan.sources == {"S1": 100.0, "S2": 50.0}


def test_link_factors_are_held_to_0_1():
    net = network([node("S", "source", capacity=500), node("Z", "zone", demand=200, priority=1)],
                  [link("a", "S", "Z", 100)])
    model = RoutingModel(net)
    assert model.solve(RoutingInputs(demand={}, link_factor={"a": 1.5})).flows == {"a": 100.0}
    assert model.solve(RoutingInputs(demand={}, link_factor={"a": -0.5})).flows == {"a": 0.0}
    assert model.solve(RoutingInputs(demand={}, link_factor={"a": 0.3})).flows == {"a": 30.0}


def test_storage_is_kept_above_its_reserve_unless_demand_needs_it():
    # R: 8-10 ML, now 9 ML; its reserve is 8.3 ML (15% of the range above the minimum), and
    # its target fill (6 ML) is below its minimum. Pumping costs 15 Rs/kWh, 15,000 Rs/ML:
    # R is worth drawing down to save that, but not below the reserve (20,000 Rs/ML an hour).
    net = network([node("S", "source", capacity=200), node("R", "reservoir", volume=9.0, min_volume=8.0,
                                                               max_volume=10.0),
                   node("Z", "zone", demand=24, priority=1)],
                  [link("p", "S", "Z", 200, kind="pump", energy=1.0), link("out", "R", "Z", 200)])
    plan = RoutingModel(net).solve(RoutingInputs(demand={}, tariff=[15.0]))
    assert plan.volume_end["R"] == pytest.approx(8.3)
    assert plan.flows == {"p": pytest.approx(7.2), "out": pytest.approx(16.8)}
    # At 25 Rs/kWh the saving outweighs the reserve: R goes to its minimum.
    assert RoutingModel(net).solve(RoutingInputs(demand={}, tariff=[25.0])).volume_end["R"] == pytest.approx(8.0)
    # With no source it goes below the reserve rather than leave Z short.
    drained = RoutingModel(net).solve(RoutingInputs(demand={}, isolated={"S"}))
    assert drained.volume_end["R"] == pytest.approx(8.0) and drained.shortfall == {"Z": 0.0}


def test_plan_values_are_rounded_and_never_negative_zero():
    assert _clean(1.23456) == 1.235
    assert math.copysign(1.0, _clean(-0.0001)) == 1.0
    assert math.copysign(1.0, _clean(-0.0)) == 1.0


def test_a_plan_survives_its_copy_between_instances():
    plan = RoutingModel(one_source(), horizon=2).solve(RoutingInputs(demand={}, start=T0))
    copy = RoutingPlan.from_dict(dataclasses.asdict(plan))
    assert copy == plan and copy.steps[1].start == T0 + 3600
    bare = {k: v for k, v in dataclasses.asdict(plan).items() if k != "steps"}
    assert RoutingPlan.from_dict(bare).steps == []


def test_the_horizon_shrinks_to_fit_the_column_budget():
    net = one_source()          # 1 link, 1 source, 1 zone: 3 columns a step, 2 fixed
    assert horizon_within(net, 24, 1000) == 24
    assert horizon_within(net, 24, 2 + 3 * 10) == 10
    assert horizon_within(net, 24, 2 + 3 * 10 + 2) == 10
    assert horizon_within(net, 24, 3) == 1                     # never less than one step
