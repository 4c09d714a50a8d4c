"""Decision-engine solve time: the bundled network, a synthetic 1,000-node one,
and wntr's Net6 (3,356 nodes), for one step and for the 24-step plan.

Prints median and p95 over repeated solves, model building included (the
engine builds the LP once per network and refreshes it per solve, so both
"first solve" and "re-solve" are shown; re-solves vary demand by +-20%).
Run: python bench/routing_solve.py [--quick]
"""
from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.adapters.network_files import load_network  # noqa: E402
from app.config import BUNDLED_NETWORK  # noqa: E402
from app.services.network import Network  # noqa: E402
from app.services.routing import RoutingInputs, RoutingModel  # noqa: E402

REPEATS = 30


def synthetic(n_nodes: int = 1000, n_links: int = 3000, seed: int = 1) -> Network:
    """Sources feed a layered mesh of junctions and reservoirs down to zones."""
    rng = random.Random(seed)
    nodes, links = [], []
    n_sources, n_zones, n_res = 20, 300, 60
    kinds = (["source"] * n_sources + ["reservoir"] * n_res + ["zone"] * n_zones
             + ["junction"] * (n_nodes - n_sources - n_res - n_zones))
    for i, kind in enumerate(kinds):
        node = {"id": f"N{i}", "kind": kind, "name": f"N{i}", "lat": 12.9, "lon": 77.5}
        if kind == "source":
            node.update(capacity=rng.uniform(200, 800), cost=rng.uniform(500, 3000))
        elif kind == "zone":
            node.update(demand=rng.uniform(5, 40), priority=rng.randint(1, 3))
        elif kind == "reservoir":
            node.update(volume=20, min_volume=5, max_volume=40)
        nodes.append(node)
    # Order: sources first, zones last, so links go "downhill" in index with some back-links.
    order = [n["id"] for n in nodes if n["kind"] == "source"] + \
            [n["id"] for n in nodes if n["kind"] in ("junction", "reservoir")] + \
            [n["id"] for n in nodes if n["kind"] == "zone"]
    position = {node_id: i for i, node_id in enumerate(order)}
    seen = set()
    while len(links) < n_links:
        a, b = rng.sample(order, 2)
        if position[a] > position[b]:
            a, b = b, a
        if b.startswith("N") and nodes[int(b[1:])]["kind"] == "source" or (a, b) in seen:
            continue
        seen.add((a, b))
        kind = rng.choice(["pipe", "pipe", "pump", "valve"])
        links.append({"id": f"L{len(links)}", "from": a, "to": b, "kind": kind,
                      "capacity": rng.uniform(20, 300), "energy": 0.5 if kind == "pump" else 0.0})
    return Network.from_dict({"name": "synthetic", "nodes": nodes, "links": links})


def measure(name: str, network: Network, horizon: int = 1, firsts: int = 5, repeats: int = REPEATS) -> None:
    first = []
    for _ in range(firsts):
        started = time.perf_counter()
        RoutingModel(network, horizon=horizon).solve(RoutingInputs(demand={}))
        first.append((time.perf_counter() - started) * 1000)
    model = RoutingModel(network, horizon=horizon)
    plan = model.solve(RoutingInputs(demand={}))
    rng = random.Random(2)
    again = []
    for _ in range(repeats):
        steps = [{z.id: z.demand * rng.uniform(0.8, 1.2) for z in network.of_kind("zone")} for _ in range(horizon)]
        started = time.perf_counter()
        plan = model.solve(RoutingInputs(demand=steps[0], demand_steps=steps, previous=plan.flows))
        again.append((time.perf_counter() - started) * 1000)
    print(f"{name:<28} {horizon:>5} {len(network.nodes):>6} {len(network.links):>6}  "
          f"{statistics.median(first):>11.1f}  {statistics.median(again):>9.1f}  "
          f"{sorted(again)[max(0, int(0.95 * len(again)) - 1)]:>7.1f}   {plan.status}")


def net6() -> Network | None:
    try:
        import wntr
    except ImportError:
        return None
    return load_network(Path(wntr.__file__).parent / "library" / "networks" / "Net6.inp")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print("Plan LP solve time (ms), HiGHS through highspy (model built once, bounds and costs updated)")
    print(f"{'network':<28} {'steps':>5} {'nodes':>6} {'links':>6}  {'build+solve':>11}  {'re-solve':>9}  "
          f"{'p95':>7}   status")
    bundled = load_network(BUNDLED_NETWORK)
    measure("bundled Bengaluru", bundled)
    measure("bundled Bengaluru", bundled, horizon=24)
    big = synthetic()
    measure("synthetic 1000 / 3000", big)
    measure("synthetic 1000 / 3000", big, horizon=24, firsts=1 if quick else 3, repeats=3 if quick else 10)
    six = net6()
    if six is not None:
        measure("wntr Net6", six, firsts=1, repeats=5)
        measure("wntr Net6", six, horizon=24, firsts=1, repeats=2 if quick else 3)
