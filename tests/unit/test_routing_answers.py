"""What /api/routing and /api/plan show of a solve besides its flows: the objective (Rs over
the horizon, contract), the solve time, and the answer when no plan meets every bound."""
from __future__ import annotations

import types

import pytest

from app.services import routing
from app.services.routing import RoutingInputs, RoutingModel, RoutingPlan
from tests.unit.networks import link, network, node


def one_source():
    """S (10 Rs/ML, 0.2 kWh/m3) pumps Z's 24 MLD through P (0.5 kWh/m3)."""
    return network([node("S", "source", capacity=100, cost=10.0, energy=0.2),
                    node("Z", "zone", demand=24, priority=1)],
                   [link("P", "S", "Z", 100, kind="pump", energy=0.5)])


def cut_off():
    """R must end above 40 ML but holds nothing and S can add only 10 MLD: no plan fits."""
    net = network(
        [node("S", "source", capacity=10), node("R", "reservoir", volume=0, min_volume=0, max_volume=50),
         node("Z", "zone", demand=5, priority=1)],
        [link("in", "S", "R", 10), link("out", "R", "Z", 10)])
    return net


def test_a_first_plans_objective_is_what_its_water_and_energy_cost():
    plan = RoutingModel(one_source()).solve(RoutingInputs(demand={}, tariff=[8.0]))
    # 1 ML in the hour: 700 kWh (500 pumped, 200 at the source) x 8 Rs + 10 Rs of water.
    assert plan.objective == pytest.approx(5610.0)
    assert plan.steps[0].cost == 5610.0
    # Over two hours at 8 and 6 Rs/kWh.
    two = RoutingModel(one_source(), horizon=2).solve(RoutingInputs(demand={}, tariff=[8.0, 6.0]))
    assert two.objective == pytest.approx(5610.0 + 4210.0)


def test_the_objective_prices_a_shortfall_per_ml_by_priority():
    net = network([node("S", "source", capacity=20),
                   node("HIGH", "zone", demand=24, priority=2), node("LOW", "zone", demand=24, priority=1)],
                  [link("h", "S", "HIGH", 100), link("l", "S", "LOW", 100)])
    plan = RoutingModel(net).solve(RoutingInputs(demand={}))
    assert plan.shortfall == {"HIGH": 4.0, "LOW": 24.0}
    # 1 ML short of LOW at 1e6 Rs/ML, 1/6 ML of HIGH at ten times that.
    assert plan.objective == pytest.approx(1e6 + 1e7 / 6)
    # Half-hour steps: half the water goes short in each, at the same price per ML.
    half = RoutingModel(net, horizon=2, step_h=0.5).solve(RoutingInputs(demand={}))
    assert half.objective == pytest.approx(1e6 + 1e7 / 6)


def test_holding_the_plan_in_force_costs_nothing_and_a_link_it_does_not_name_carried_nothing():
    net = network([node("S1", "source", capacity=100), node("S2", "source", capacity=100, cost=5000.0),
                   node("Z", "zone", demand=24, priority=1)],
                  [link("a", "S1", "Z", 100), link("b", "S2", "Z", 100)])
    model = RoutingModel(net)
    held = model.solve(RoutingInputs(demand={}, previous={"a": 24.0, "b": 0.0}))
    assert held.flows == {"a": 24.0, "b": 0.0} and held.objective == pytest.approx(0.0)
    # A plan in force from before link b existed: b carried nothing, so nothing changes.
    older = model.solve(RoutingInputs(demand={}, previous={"a": 24.0}))
    assert older.flows == {"a": 24.0, "b": 0.0} and older.objective == pytest.approx(0.0)
    # Moving 10 MLD off a costs 1 Rs per MLD changed.
    moved = model.solve(RoutingInputs(demand={"Z": 14.0}, previous={"a": 24.0, "b": 0.0}))
    assert moved.flows == {"a": 14.0, "b": 0.0} and moved.objective == pytest.approx(10.0)


def test_the_solve_time_is_reported_in_milliseconds(monkeypatch):
    ticks = iter([100.0, 100.25])
    monkeypatch.setattr(routing, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert RoutingModel(one_source()).solve(RoutingInputs(demand={})).solve_ms == pytest.approx(250.0)
    ticks = iter([7.0, 7.004])
    model = RoutingModel(cut_off())
    model.reservoirs[0].min_volume = 40.0
    assert model.solve(RoutingInputs(demand={})).solve_ms == pytest.approx(4.0)


def test_an_infeasible_problem_answers_why_with_the_demand_it_could_not_meet():
    model = RoutingModel(cut_off())
    # The reservoir must end above a minimum it is far below, with no way to refill in time.
    model.reservoirs[0].min_volume = 40.0
    plan = model.solve(RoutingInputs(demand={"Z": 7.0}, volume={"R": 0.0}))
    assert isinstance(plan.solve_ms, float) and plan.solve_ms >= 0
    assert plan == RoutingPlan("infeasible", None, plan.solve_ms, flows={}, sources={}, shortfall={},
                               demand={"Z": 7.0}, volume_end={},
                               message="no plan meets every bound (storage, capacity)")
    # Once the bound can be met again, the same model plans from scratch.
    model.reservoirs[0].min_volume = 0.0
    again = model.solve(RoutingInputs(demand={"Z": 7.0}, volume={"R": 0.0}))
    assert again.status == "optimal" and again.shortfall == {"Z": 0.0} and again.flows["in"] == 10.0


def test_a_solver_that_stops_short_answers_degraded_with_its_reason():
    model = RoutingModel(one_source())
    model.highs.setOptionValue("time_limit", 0.0)
    plan = model.solve(RoutingInputs(demand={"Z": 30.0}))
    assert isinstance(plan.solve_ms, float) and plan.solve_ms >= 0
    assert plan == RoutingPlan("degraded", None, plan.solve_ms, flows={}, sources={}, shortfall={},
                               demand={"Z": 30.0}, volume_end={}, message="Time limit reached")
    model.highs.setOptionValue("time_limit", float("inf"))
    again = model.solve(RoutingInputs(demand={"Z": 30.0}))
    assert again.status == "optimal" and again.flows == {"P": 30.0}


def test_an_optimal_plan_carries_its_objective_time_and_step(monkeypatch):
    ticks = iter([5.0, 5.5])
    monkeypatch.setattr(routing, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    plan = RoutingModel(one_source(), horizon=3, step_h=2.0).solve(RoutingInputs(demand={}, tariff=[8.0]))
    # Three 2 h steps of 2 ML each, every one at 8 Rs/kWh: 3 x 2 x 5610 Rs.
    assert plan.objective == pytest.approx(6 * 5610.0) and plan.solve_ms == pytest.approx(500.0)
    assert plan.step_h == 2.0 and [s.cost for s in plan.steps] == [11220.0] * 3


def test_a_solve_writes_nothing_to_the_servers_output(capfd):
    model = RoutingModel(one_source(), horizon=2)
    capfd.readouterr()          # HiGHS's banner, once per model
    model.solve(RoutingInputs(demand={}))
    model.solve(RoutingInputs(demand={"Z": 500.0}))
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("shape", ["zone only", "one source", "reservoirs"])
def test_the_longest_horizon_within_the_column_budget_is_chosen(shape):
    nets = {
        "zone only": network([node("Z", "zone", demand=5, priority=1)], []),
        "one source": one_source(),
        "reservoirs": network(
            [node("S", "source", capacity=100), node("R1", "reservoir", volume=5, min_volume=0, max_volume=10),
             node("R2", "reservoir", volume=5, min_volume=0, max_volume=10), node("Z", "zone", demand=24, priority=1)],
            [link("a", "S", "R1", 100), link("b", "S", "R2", 100), link("c", "R1", "Z", 100),
             link("d", "R2", "Z", 100)]),
    }
    net = nets[shape]
    for budget in (12, 40, 97, 250):
        steps = routing.horizon_within(net, 1000, budget)
        # The most steps that fit, and never fewer than one.
        assert budget < RoutingModel(net, horizon=steps + 1).nvars
        assert RoutingModel(net, horizon=steps).nvars <= budget or steps == 1
    assert routing.horizon_within(net, 4, 250) == 4            # never more than wanted


def two_reservoirs():
    """R1 (8-10 ML, now 9: reserve 8.3) and R2 (13-20 ML, now 16: reserve 14.05) can feed Z by
    gravity, or S can pump to it (1 kWh/m3). Both targets (60 % of the top) lie below the minimum."""
    return network([node("S", "source", capacity=200),
                    node("R1", "reservoir", volume=9.0, min_volume=8.0, max_volume=10.0),
                    node("R2", "reservoir", volume=16.0, min_volume=13.0, max_volume=20.0),
                    node("Z", "zone", demand=24, priority=1)],
                   [link("p", "S", "Z", 200, kind="pump", energy=1.0), link("o1", "R1", "Z", 200),
                    link("o2", "R2", "Z", 200)])


def test_each_reservoir_keeps_its_own_reserve_in_every_step():
    # Three hours of 1 ML: pumping costs 15,000 Rs/ML at 15 Rs/kWh, less than a step below a
    # reserve (20,000 Rs/ML), so each reservoir gives what it has above its reserve, no more.
    plan = RoutingModel(two_reservoirs(), horizon=3).solve(RoutingInputs(demand={}, tariff=[15.0]))
    last = plan.steps[-1]
    assert last.volume_end == {"R1": pytest.approx(8.3), "R2": pytest.approx(14.05)}
    assert all(s.volume_end["R1"] >= 8.3 - 1e-6 and s.volume_end["R2"] >= 14.05 - 1e-6 for s in plan.steps)
    # 3 ML wanted, 2.65 ML above the reserves: 0.35 ML pumped, 350 kWh.
    assert sum(s.energy_kwh for s in plan.steps) == pytest.approx(350.0, abs=0.2)
    assert plan.objective == pytest.approx(350.0 * 15)


def test_below_the_reserve_costs_the_same_in_every_reservoir():
    # No source: Z's 3 ML in the hour take 2.65 ML above the reserves and 0.35 ML below them,
    # from either reservoir, at 20,000 Rs/ML.
    plan = RoutingModel(two_reservoirs()).solve(RoutingInputs(demand={"Z": 72.0}, isolated={"S"}))
    assert plan.shortfall == {"Z": 0.0}
    assert plan.volume_end["R1"] + plan.volume_end["R2"] == pytest.approx(22.0)
    assert plan.objective == pytest.approx(0.35 * 20_000)
