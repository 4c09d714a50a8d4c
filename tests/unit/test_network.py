import json

import pytest

from app.adapters.network_files import load_network
from app.config import BUNDLED_NETWORK
from app.services.network import Network, NetworkFileError
from tests.unit.networks import link, node


def test_bundled_bengaluru_network_loads_and_is_plausible():
    net = load_network(BUNDLED_NETWORK)
    assert 2000 <= net.total_demand() <= 2300          # DOMAIN: about 2,100-2,200 MLD
    assert len(net.of_kind("zone")) == 10
    assert 6 <= len(net.of_kind("reservoir")) <= 10
    assert 100 <= len(net.sensors) <= 200
    assert {"SRC_CWSS_5", "SRC_TG_HALLI", "SRC_GROUNDWATER"} <= set(net.nodes)
    for n in net.nodes.values():      # real coordinates, around Bengaluru and the Cauvery
        assert 12.0 < n.lat < 13.5 and 77.0 < n.lon < 78.0
    # Every station is instrumented.
    for n in net.nodes.values():
        assert net.sensors_at(n.id), f"{n.id} has no sensors"
    assert {s.metric for s in net.sensors.values()} >= {"flow", "pressure", "level", "ph", "turbidity",
                                                         "chlorine", "do", "bod", "fc"}
    # The supply chain is connected: a plan serves the whole city.
    from app.services.routing import RoutingInputs, RoutingModel
    plan = RoutingModel(net).solve(RoutingInputs(demand={}))
    assert plan.status == "optimal" and sum(plan.shortfall.values()) == 0


def test_registry_gives_reading_defaults():
    net = load_network(BUNDLED_NETWORK)
    assert net.defaults("Z_SOUTH.flow") == {"metric": "flow", "unit": "MLD", "node_id": "Z_SOUTH",
                                            "zone": "Z_SOUTH"}
    assert net.defaults("unknown") is None


def base():
    return {"nodes": [node("S", "source", capacity=10), node("Z", "zone", demand=5, priority=1)],
            "links": [link("L", "S", "Z", 10)],
            "sensors": [{"id": "Z.flow", "node": "Z", "metric": "flow"}]}


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["links"].append(link("L2", "S", "NOWHERE", 5)), "link 'L2' refers to unknown node 'NOWHERE'"),
    (lambda d: d["links"].__setitem__(0, link("L", "S", "Z", -5)), "links[0] (id 'L') field 'capacity'"),
    (lambda d: d["nodes"].append(node("S", "junction")), "duplicate id 'S'"),
    (lambda d: d["sensors"].append({"id": "X.p", "node": "GHOST", "metric": "pressure"}),
     "sensor 'X.p' refers to unknown node 'GHOST'"),
    (lambda d: d["nodes"].append(node("R", "reservoir", volume=50, min_volume=0, max_volume=10)),
     "reservoir 'R' volume must lie within"),
    (lambda d: d["nodes"].append(node("Q", "lake")), "nodes[2] (id 'Q') field 'kind'"),
])
def test_bad_files_name_the_element(mutate, expected):
    data = base()
    mutate(data)
    with pytest.raises(NetworkFileError) as caught:
        Network.from_dict(data)
    assert expected in str(caught.value)


def test_malformed_file_names_the_line(tmp_path):
    path = tmp_path / "net.json"
    text = json.dumps(base(), indent=1).splitlines()
    text.insert(3, "  oops,")
    path.write_text("\n".join(text))
    with pytest.raises(NetworkFileError, match="line 4"):
        load_network(path)


def test_a_pump_given_only_its_head_gets_the_energy_it_takes():
    from tests.unit.networks import link, network, node
    net = network([node("S", "source", capacity=10), node("Z", "zone", demand=5, priority=1)],
                  [link("P", "S", "Z", 10, kind="pump", head=450), link("Q", "S", "Z", 10, kind="pump", head=100,
                                                                        efficiency=0.5),
                   link("R", "S", "Z", 10, kind="pump", energy=0.3, head=450)])
    # DOMAIN.md: about 1.6 kWh/m3 at H = 450 m and efficiency 0.75.
    assert net.links["P"].energy == pytest.approx(1.635, abs=1e-3)
    assert net.links["Q"].energy == pytest.approx(0.545, abs=1e-3)
    assert net.links["R"].energy == 0.3          # a stated energy wins
