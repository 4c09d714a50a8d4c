"""Narration: only material changes become actions, and causes name the real limit."""
from app.domain.records import ControlOrder
from app.services.narration import Narrator
from app.services.routing import RoutingInputs, RoutingModel
from tests.unit.networks import link, network, node


def city():
    """Two sources; W is fed by a valve from S1 and a pipe from S2; E by S1 only."""
    return network(
        [node("S1", "source", capacity=300, cost=10), node("S2", "source", capacity=100, cost=50),
         node("W", "zone", demand=150, priority=1), node("E", "zone", demand=100, priority=2)],
        [link("V", "S1", "W", 200, kind="valve"), link("P", "S2", "W", 60),
         link("PE", "S1", "E", 200, kind="pump", energy=0.1)])


def plan(net, **inputs):
    model = RoutingModel(net)
    given = RoutingInputs(demand=inputs.pop("demand", {}), **inputs)
    return model.solve(given), given


def kinds(actions):
    return [(a.kind, a.target) for a in actions]


def test_changes_inside_the_deadband_are_silent():
    net = city()
    narrator = Narrator(net, deadband=0.10)
    old, old_in = plan(net)
    new, new_in = plan(net, demand={"W": 165})          # V moves by 15 MLD < 10% of 200
    assert narrator.changes(old, old_in, new, new_in) == []
    new, new_in = plan(net, demand={"W": 190})          # V moves by 40 MLD
    actions = narrator.changes(old, old_in, new, new_in)
    assert kinds(actions) == [("valve_setting", "V")]
    assert actions[0].command == ControlOrder("set_valve", "V", 95.0)


def test_a_pump_stop_is_material_and_carries_its_command():
    net = city()
    narrator = Narrator(net, deadband=0.5)
    old, old_in = plan(net)
    new, new_in = plan(net, demand={"E": 0})
    actions = narrator.changes(old, old_in, new, new_in)
    assert kinds(actions) == [("pump_stop", "PE")]
    assert actions[0].command == ControlOrder("set_pump", "PE", "off")


def test_shortfall_from_an_operator_valve_setting_is_not_called_priority():
    net = city()
    narrator = Narrator(net, deadband=0.10)
    old, old_in = plan(net)
    new, new_in = plan(net, link_factor={"V": 0.4}, restrictions={"V": "ops set valve V to 40%"})
    actions = narrator.changes(old, old_in, new, new_in)
    cut = next(a for a in actions if a.kind == "zone_shortfall")
    assert cut.target == "W" and new.shortfall["W"] == 150 - 80 - 60
    assert cut.causes[0].startswith("operator restriction: ops set valve V to 40%")
    assert not any(c.startswith("priority") for c in cut.causes)
    # The operator set that valve: the plan does not command it back.
    assert next(a for a in actions if a.target == "V").command is None


def test_causes_name_capacity_quality_and_priority():
    net = city()
    narrator = Narrator(net, deadband=0.10)
    short, given = plan(net, demand={"W": 300})         # V 200 + P 60 cannot carry 300
    assert narrator.causes("W", short, given)[0].startswith("capacity: every link into W is full")
    out, given = plan(net, excluded_sources={"S1": "fc 12000 > 10000"})
    assert any(c.startswith("quality exclusion: S1") for c in narrator.causes("W", out, given))
    # Not enough water for both: the junior zone is cut, and priority says why.
    small = network([node("S", "source", capacity=100), node("A", "zone", demand=80, priority=2),
                     node("B", "zone", demand=80, priority=1)],
                    [link("a", "S", "A", 100), link("b", "S", "B", 100)])
    cut, given = plan(small)
    causes = Narrator(small, 0.1).causes("B", cut, given)
    assert cut.shortfall["B"] == 60 and causes[0].startswith("priority:") and "priority 2" in causes[0]


def test_a_leak_hold_is_one_action_with_its_cause():
    net = city()
    narrator = Narrator(net, deadband=0.10)
    old, old_in = plan(net)
    new, new_in = plan(net, demand={"E": 90}, held={"E": (110.0, 90.0)})
    actions = narrator.changes(old, old_in, new, new_in)
    assert kinds(actions)[0] == ("leak_hold", "E")
    assert actions[0].causes[0].startswith("leak: E is served 90 MLD of a metered 110 MLD")
