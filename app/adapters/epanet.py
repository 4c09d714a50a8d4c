"""Import an EPANET `.inp` network (through wntr) into our network model.

wntr is an optional extra (`pip install wntr six`; about 450 MB with its
dependencies), imported only when an `.inp` file is loaded.

Mapping:
- EPANET reservoirs (fixed-head supplies) become `source` nodes, tanks become
  `reservoir` nodes (volume from diameter and levels), junctions with a base
  demand become `zone` nodes (priority 1), other junctions stay `junction`.
- EPANET names nodes and links separately; our ids are one namespace, so
  links are named `pipe:<name>`, `pump:<name>`, `valve:<name>`.
- Pipes become `pipe` links, bidirectional unless they hold a check valve;
  pumps become `pump`, valves `valve`.
- Capacity comes from the diameter at DESIGN_VELOCITY_M_S; a pump's from the
  largest flow on its curve, or its connected pipes when it has none.
- EPANET coordinates are planar, so they are scaled into a box of MAP_SPAN_DEG
  degrees around MAP_CENTRE for the map.

An `.inp` file defines no sensors, so an imported network gets a default
layout (`default_sensors`), enough for the simulator, leak detection and the
plan to run on it as on the bundled network:
- every zone: inflow `<zone>.flow` (MLD) and pressure `<zone>.pressure` (m);
- every tank: level `<tank>.level` (%);
- every pump: flow `<pump link>.flow` (MLD), placed at its suction node;
- every source: quality, `<source>.turbidity` (NTU) and `<source>.ph`.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from app.models import ID_CHARS, MAX_ID_LENGTH
from app.services.network import Network

# Flow velocity (m/s) at which a pipe is taken to be at capacity; 1.5 m/s is a
# common upper design velocity for distribution mains.
DESIGN_VELOCITY_M_S = 1.5
M3S_TO_MLD = 86.4
MAP_CENTRE = (12.9716, 77.5946)
MAP_SPAN_DEG = 0.2
# Capacity of a fixed-head EPANET reservoir: effectively unlimited, but finite for the LP.
SOURCE_CAPACITY_MLD = 10_000.0
# Reporting interval of the default sensors (s): longer than the bundled network's 5 s,
# since an imported network may have thousands of zones.
DEFAULT_SENSOR_INTERVAL_S = 15.0
# Normal ranges of the default sensors (CPHEEO service pressure; DOMAIN.md quality).
ZONE_PRESSURE_NORMAL_M = (12.0, 30.0)
TURBIDITY_NORMAL_NTU = (0.1, 1.0)
PH_NORMAL = (6.5, 8.5)


def default_sensors(nodes: list[dict], links: list[dict]) -> list[dict]:
    """The documented default sensor layout of an imported network (module docstring)."""
    every = DEFAULT_SENSOR_INTERVAL_S
    sensors = []
    taken: set[str] = set()

    def sid(element: str, metric: str) -> str:
        """`<element>.<metric>` in the characters sensor ids allow, unique, at most 64 long."""
        base = re.sub(rf"[^{ID_CHARS}]", "_", element)[:MAX_ID_LENGTH - len(metric) - 5]
        candidate, n = f"{base}.{metric}", 1
        while candidate in taken:
            n += 1
            candidate = f"{base}~{n}.{metric}".replace("~", "_")
        taken.add(candidate)
        return candidate

    for node in nodes:
        nid, kind = node["id"], node["kind"]
        if kind == "zone":
            top = max(node.get("capacity") or node.get("demand") or 1.0, 1.0) * 2
            sensors += [{"id": sid(nid, "flow"), "node": nid, "metric": "flow", "unit": "MLD",
                         "normal": [0, round(top, 3)], "deadband": 0.0, "interval_s": every},
                        {"id": sid(nid, "pressure"), "node": nid, "metric": "pressure", "unit": "m",
                         "normal": list(ZONE_PRESSURE_NORMAL_M), "deadband": 0.0, "interval_s": every}]
        elif kind == "reservoir":
            sensors.append({"id": sid(nid, "level"), "node": nid, "metric": "level", "unit": "%",
                            "normal": [10, 95], "deadband": 0.2, "interval_s": every})
        elif kind == "source":
            sensors += [{"id": sid(nid, "turbidity"), "node": nid, "metric": "turbidity", "unit": "NTU",
                         "normal": list(TURBIDITY_NORMAL_NTU), "deadband": 0.05, "interval_s": every},
                        {"id": sid(nid, "ph"), "node": nid, "metric": "ph", "unit": "pH",
                         "normal": list(PH_NORMAL), "deadband": 0.05, "interval_s": every}]
    for link in links:
        if link["kind"] == "pump":
            sensors.append({"id": sid(link["id"].replace(":", "_"), "flow"), "node": link["from"], "link": link["id"],
                            "metric": "flow", "unit": "MLD", "normal": [0, link["capacity"]],
                            "deadband": 0.0, "interval_s": every})
    return sensors


def pipe_capacity_mld(diameter_m: float) -> float:
    return DESIGN_VELOCITY_M_S * math.pi * diameter_m ** 2 / 4 * M3S_TO_MLD


def _map_coordinates(wn) -> dict[str, tuple[float, float]]:
    coords = {name: node.coordinates or (0.0, 0.0) for name, node in wn.nodes()}
    xs = [c[0] for c in coords.values()]
    ys = [c[1] for c in coords.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale = MAP_SPAN_DEG / span
    lat0 = MAP_CENTRE[0] - (max(ys) + min(ys)) / 2 * scale
    lon0 = MAP_CENTRE[1] - (max(xs) + min(xs)) / 2 * scale
    return {name: (round(lat0 + y * scale, 6), round(lon0 + x * scale, 6))
            for name, (x, y) in coords.items()}


def load_inp(path: Path | str) -> Network:
    import wntr

    wn = wntr.network.WaterNetworkModel(str(path))
    where = _map_coordinates(wn)
    nodes, links = [], []

    def place(name):
        lat, lon = where[name]
        return {"lat": lat, "lon": lon}

    for name, junction in wn.junctions():
        demand = sum(d.base_value for d in junction.demand_timeseries_list) * M3S_TO_MLD
        if demand > 0:
            nodes.append({"id": name, "kind": "zone", "name": f"Junction {name}", **place(name),
                          "demand": round(demand, 4), "priority": 1, "capacity": round(demand, 4)})
        else:
            nodes.append({"id": name, "kind": "junction", "name": f"Junction {name}", **place(name)})
    for name, _ in wn.reservoirs():
        nodes.append({"id": name, "kind": "source", "name": f"Reservoir {name}", **place(name),
                      "capacity": SOURCE_CAPACITY_MLD, "cost": 0.0, "energy": 0.0})
    for name, tank in wn.tanks():
        area_m2 = math.pi * tank.diameter ** 2 / 4
        ml = lambda level: round(area_m2 * level / 1000, 4)  # noqa: E731
        nodes.append({"id": name, "kind": "reservoir", "name": f"Tank {name}", **place(name),
                      "volume": ml(tank.init_level), "min_volume": ml(tank.min_level),
                      "max_volume": ml(tank.max_level)})
    pipe_cap: dict[str, float] = {}
    for name, pipe in wn.pipes():
        capacity = round(pipe_capacity_mld(pipe.diameter), 3)
        pipe_cap[name] = capacity
        links.append({"id": f"pipe:{name}", "from": pipe.start_node_name, "to": pipe.end_node_name,
                      "kind": "pipe", "capacity": capacity, "bidirectional": not pipe.check_valve})
    for name, pump in wn.pumps():
        curve = wn.get_curve(pump.pump_curve_name) if getattr(pump, "pump_curve_name", None) else None
        if curve is not None and curve.points:
            capacity = max(q for q, _ in curve.points) * M3S_TO_MLD
        else:
            touching = [pipe_cap[p] for p, pipe in wn.pipes()
                        if {pipe.start_node_name, pipe.end_node_name} & {pump.start_node_name, pump.end_node_name}]
            capacity = max(touching, default=SOURCE_CAPACITY_MLD)
        links.append({"id": f"pump:{name}", "from": pump.start_node_name, "to": pump.end_node_name,
                      "kind": "pump", "capacity": round(capacity, 3)})
    for name, valve in wn.valves():
        links.append({"id": f"valve:{name}", "from": valve.start_node_name, "to": valve.end_node_name,
                      "kind": "valve", "capacity": round(pipe_capacity_mld(valve.diameter), 3)})
    return Network.from_dict({"name": f"EPANET {Path(path).name}", "nodes": nodes, "links": links,
                              "sensors": default_sensors(nodes, links)}, source=str(path))
