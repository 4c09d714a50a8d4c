"""EPANET import on the example networks that wntr ships."""
from pathlib import Path

import pytest
import wntr

from app.adapters.network_files import load_network
from app.adapters.epanet import DESIGN_VELOCITY_M_S, pipe_capacity_mld
from app.services.network import Network
from app.services.routing import RoutingInputs, RoutingModel

NETWORKS = Path(wntr.__file__).parent / "library" / "networks"


def test_net3_imports_with_the_right_counts():
    net = load_network(NETWORKS / "Net3.inp")
    # Net3: 92 junctions, 2 reservoirs, 3 tanks; 117 pipes, 2 pumps, 0 valves.
    assert len(net.nodes) == 97 and len(net.links) == 119
    assert len(net.of_kind("source")) == 2 and len(net.of_kind("reservoir")) == 3
    assert len(net.of_kind("zone")) + len(net.of_kind("junction")) == 92
    kinds = [link.kind for link in net.links.values()]
    assert kinds.count("pipe") == 117 and kinds.count("pump") == 2 and kinds.count("valve") == 0
    for node in net.nodes.values():
        assert 12.8 < node.lat < 13.1 and 77.4 < node.lon < 77.7


def test_pipe_capacity_follows_diameter_at_design_velocity():
    # A 1 m main at 1.5 m/s moves 1.178 m3/s = 101.8 MLD.
    assert DESIGN_VELOCITY_M_S == 1.5
    assert pipe_capacity_mld(1.0) == pytest.approx(101.79, rel=1e-3)
    net = load_network(NETWORKS / "Net3.inp")
    model = wntr.network.WaterNetworkModel(str(NETWORKS / "Net3.inp"))
    pipe = model.get_link("20")
    assert net.links["pipe:20"].capacity == pytest.approx(pipe_capacity_mld(pipe.diameter), rel=1e-3)
    assert net.links["pipe:20"].bidirectional is not pipe.check_valve


@pytest.mark.parametrize("name", ["Net1.inp", "Net3.inp", "ky4.inp"])
def test_imported_networks_can_be_planned(name):
    net = load_network(NETWORKS / name)
    plan = RoutingModel(net).solve(RoutingInputs(demand={}))
    assert plan.status == "optimal"
    assert sum(plan.shortfall.values()) == pytest.approx(0, abs=1e-3)


def test_an_imported_network_gets_the_default_sensor_layout_and_runs():
    """An .inp file has no sensors: the documented defaults let the simulator, leak
    detection and the 24-step plan run on it as on the bundled network."""
    from app.services.leaks import LeakDetector
    from app.services.simulation import NetworkSimulation

    net = load_network(NETWORKS / "Net3.inp")
    zones, tanks = net.of_kind("zone"), net.of_kind("reservoir")
    pumps = [link for link in net.links.values() if link.kind == "pump"]
    by_metric = {}
    for sensor in net.sensors.values():
        by_metric.setdefault(sensor.metric, []).append(sensor)
    assert len(by_metric["pressure"]) == len(zones) and len(by_metric["level"]) == len(tanks) == 3
    assert len(by_metric["flow"]) == len(zones) + len(pumps)
    assert len(by_metric["turbidity"]) == len(by_metric["ph"]) == len(net.of_kind("source")) == 2
    pump_meters = [s for s in by_metric["flow"] if getattr(s, "link", None)]
    assert sorted(s.link for s in pump_meters) == sorted(p.id for p in pumps)

    sim = NetworkSimulation(net, seed=1, start=0.0)
    detector = LeakDetector([z.id for z in zones])
    seen = set()
    for t in range(1, 40):
        for reading in sim.step(float(t)):
            seen.add(reading["sensor_id"])
            sensor = net.sensors[reading["sensor_id"]]
            detector.observe(sensor.node, sensor.metric, reading["value"], float(t))
    assert seen == set(net.sensors)
    assert any(sim.link_flow.get(p.id, 0) > 0 for p in pumps)
    assert sum(state.pairs for state in detector.zones.values()) > 0

    plan = RoutingModel(net, horizon=24).solve(RoutingInputs(demand={}))
    assert plan.status == "optimal" and len(plan.steps) == 24
