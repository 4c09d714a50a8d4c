"""The receding-horizon plan on cases solvable by hand.

Each test is built so that dropping the term it is about (the time-of-day
tariff, a reservoir bound, the priority weights) changes the answer.
"""
import pytest

from app.services.routing import RoutingInputs, RoutingModel
from tests.unit.networks import link, network, node

NIGHT, DAY = 6.0, 8.0


def night_or_day(max_volume=20.0, volume=6.0, min_volume=0.0):
    """S feeds Z directly through pump D (0.50 kWh/m3), or via reservoir R through
    pump N (0.55 kWh/m3). Z needs 24 MLD (1 ML an hour) in the second hour only."""
    return network(
        [node("S", "source", capacity=100), node("R", "reservoir", volume=volume, min_volume=min_volume, max_volume=max_volume),
         node("Z", "zone", demand=24, priority=1)],
        [link("D", "S", "Z", 100, kind="pump", energy=0.50), link("N", "S", "R", 100, kind="pump", energy=0.55),
         link("out", "R", "Z", 100, kind="valve")])


def two_hours(net, tariff, day_demand=24.0, **extra):
    model = RoutingModel(net, horizon=2, step_h=1.0)
    # R starts at 6 ML, its target (60% of 10 ML when max is 10).
    return model.solve(RoutingInputs(demand={"Z": 0.0}, demand_steps=[{"Z": 0.0}, {"Z": day_demand}],
                                     tariff=tariff, **extra))


def test_cheap_night_pumping_into_a_reservoir_beats_day_pumping():
    plan = two_hours(night_or_day(max_volume=10.0), [NIGHT, DAY])
    night, day = plan.steps
    # Night: 0.55 x 6 = 3.3 Rs/m3 via storage beats 0.50 x 8 = 4.0 Rs/m3 direct by day.
    assert night.flows["N"] == pytest.approx(24.0) and night.volume_end["R"] == pytest.approx(7.0)
    assert day.flows["D"] == pytest.approx(0.0) and day.flows["out"] == pytest.approx(24.0)
    assert day.volume_end["R"] == pytest.approx(6.0) and day.shortfall["Z"] == 0.0
    assert night.energy_kwh == pytest.approx(0.55 * 1000) and day.energy_kwh == pytest.approx(0.0)
    assert night.cost == pytest.approx(0.55 * 1000 * NIGHT)
    # At a flat rate the direct pump is cheaper: the tariff is what moves pumping to the night.
    flat = two_hours(night_or_day(max_volume=10.0), [7.0, 7.0])
    assert flat.steps[0].flows["N"] == pytest.approx(0.0) and flat.steps[1].flows["D"] == pytest.approx(24.0)


def test_reservoir_bounds_bind():
    # R holds at most 4 ML and starts at its target 2.4 ML: of the 2 ML the second hour
    # needs, only 1.6 ML fit in storage at night; the rest is pumped by day.
    plan = two_hours(night_or_day(max_volume=4.0, volume=2.4), [NIGHT, DAY], day_demand=48.0)
    night, day = plan.steps
    assert night.volume_end["R"] == pytest.approx(4.0)
    assert night.flows["N"] == pytest.approx(1.6 * 24)
    assert day.flows["D"] + day.flows["N"] == pytest.approx(0.4 * 24)
    assert day.volume_end["R"] == pytest.approx(2.4) and day.shortfall["Z"] == pytest.approx(0.0)
    # And the minimum: with no source, demand draws R down to its floor and no further.
    net = night_or_day(max_volume=10.0, min_volume=1.0)
    drained = RoutingModel(net, horizon=2).solve(RoutingInputs(
        demand={"Z": 96.0}, demand_steps=[{"Z": 96.0}, {"Z": 96.0}], isolated={"S"}, volume={"R": 6.0}))
    # 8 ML wanted, 5 ML above the floor: 3 ML (72 MLD-hours) go short.
    assert drained.steps[-1].volume_end["R"] == pytest.approx(1.0)
    assert min(s.volume_end["R"] for s in drained.steps) >= 1.0 - 1e-6
    assert sum(s.shortfall["Z"] for s in drained.steps) == pytest.approx(72.0)


def test_priorities_hold_under_shortage_in_every_step():
    net = network(
        [node("S", "source", capacity=100),
         node("HOSPITAL", "zone", demand=60, priority=3), node("OUTER", "zone", demand=60, priority=1)],
        # The senior zone's path is the dearer one: only priority keeps it whole.
        [link("h", "S", "HOSPITAL", 100, kind="pump", energy=2.0), link("o", "S", "OUTER", 100)])
    steps = [{"HOSPITAL": 60, "OUTER": 60}, {"HOSPITAL": 80, "OUTER": 30}, {"HOSPITAL": 40, "OUTER": 90}]
    plan = RoutingModel(net, horizon=3).solve(RoutingInputs(demand=steps[0], demand_steps=steps,
                                                           tariff=[NIGHT, DAY, DAY]))
    assert [s.shortfall["HOSPITAL"] for s in plan.steps] == [0.0, 0.0, 0.0]
    assert [s.shortfall["OUTER"] for s in plan.steps] == pytest.approx([20.0, 10.0, 30.0])
    assert plan.shortfall == plan.steps[0].shortfall       # the first step is what is applied


def test_reservoir_volume_is_carried_between_steps():
    net = night_or_day(max_volume=50.0)
    demand = [{"Z": 24.0 * k} for k in (1, 2, 3)]
    plan = RoutingModel(net, horizon=3).solve(RoutingInputs(
        demand=demand[0], demand_steps=demand, isolated={"D", "N"}, volume={"R": 30.0}))
    assert [s.volume_end["R"] for s in plan.steps] == pytest.approx([29.0, 27.0, 24.0])
