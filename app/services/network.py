"""The water network model: nodes, links and the sensor registry.

Loaded from a JSON file (`NETWORK_FILE`, default the bundled Bengaluru
network) and validated on load; every problem is reported with the element
it concerns. Capacities are in MLD, volumes in ML.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.models import MAX_ID_LENGTH, SENSOR_ID_PATTERN

NodeKind = Literal["source", "plant", "pump_station", "reservoir", "junction", "zone"]
LinkKind = Literal["pipe", "pump", "valve"]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# When a sensor gives no reporting interval, how often it is expected to report.
DEFAULT_INTERVAL_S = 10.0
# A sensor that missed this many reports in a row is no longer live: the dashboard shows
# it stale, the plan leaves its value out, and the monitor raises `sensor_offline`.
MISSED_REPORTS = 3
# Reservoirs are kept towards this fraction of their maximum volume: the plan's storage
# target at the horizon's end, and what the simulator's refill aims at.
TARGET_FILL = 0.6
# Energy to lift 1 m3 by 1 m: rho * g / 3.6e6 J per kWh = 1000 * 9.81 / 3.6e6 kWh.
KWH_PER_M3_PER_M = 0.002725
# Wire-to-water efficiency of a pump given without one (large pump sets: 0.7-0.8).
DEFAULT_PUMP_EFFICIENCY = 0.75


class NetworkFileError(ValueError):
    """A network file that cannot be used, with one line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class Node(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    kind: NodeKind
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    capacity: NonNegative = 0.0
    # Reservoirs: volume now and its bounds (ML).
    volume: NonNegative | None = None
    min_volume: NonNegative | None = None
    max_volume: NonNegative | None = None
    # Zones: base demand (MLD) and priority (higher is served first).
    demand: NonNegative | None = None
    priority: int | None = Field(default=None, ge=1, le=10)
    # Sources: cost (Rs per ML) and energy to deliver (kWh per m3).
    cost: NonNegative | None = None
    energy: NonNegative | None = None


class Link(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    from_: str = Field(alias="from")
    to: str
    kind: LinkKind
    name: str | None = None
    capacity: NonNegative
    # Pumping energy per m3 moved (kWh/m3), for pumps; 0 for gravity. A pump given
    # only its head (m) gets rho*g*H/eta = 0.002725 * head / efficiency (DOMAIN.md).
    energy: NonNegative = 0.0
    head: NonNegative | None = None
    efficiency: Annotated[float, Field(gt=0, le=1)] | None = None
    # A pipe water may flow through either way (EPANET pipes); flow may be negative.
    bidirectional: bool = False


    @model_validator(mode="after")
    def _energy_from_head(self) -> "Link":
        if self.kind == "pump" and not self.energy and self.head:
            self.energy = round(KWH_PER_M3_PER_M * self.head / (self.efficiency or DEFAULT_PUMP_EFFICIENCY), 4)
        return self


class Sensor(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=SENSOR_ID_PATTERN)
    node: str
    metric: str
    unit: str | None = None
    normal: tuple[float, float] | None = None
    deadband: NonNegative = 0.0
    interval_s: Annotated[float, Field(gt=0)] = DEFAULT_INTERVAL_S
    # Optional per-sensor alert thresholds, overriding the metric's defaults.
    thresholds: dict | None = None


class NetworkFile(BaseModel):
    name: str = "network"
    nodes: list[Node]
    links: list[Link]
    sensors: list[Sensor] = []


def _where(kind: str, items: list, loc: tuple) -> str:
    """Name the element a pydantic error points at, e.g. `links[3] (id 'P1')`."""
    if len(loc) >= 2 and isinstance(loc[1], int) and loc[1] < len(items):
        item = items[loc[1]]
        ident = item.get("id") if isinstance(item, dict) else None
        field = ".".join(str(p) for p in loc[2:])
        return f"{kind}[{loc[1]}]" + (f" (id '{ident}')" if ident else "") + (f" field '{field}'" if field else "")
    return ".".join(str(p) for p in loc)


class Network:
    def __init__(self, spec: NetworkFile):
        self.name = spec.name
        self.nodes: dict[str, Node] = {n.id: n for n in spec.nodes}
        self.links: dict[str, Link] = {link.id: link for link in spec.links}
        self.sensors: dict[str, Sensor] = {s.id: s for s in spec.sensors}
        # Adjacency, built once: the simulator and the planner walk it every step.
        self._into: dict[str, list[Link]] = {node_id: [] for node_id in self.nodes}
        self._out: dict[str, list[Link]] = {node_id: [] for node_id in self.nodes}
        for link in self.links.values():
            self._into[link.to].append(link)
            self._out[link.from_].append(link)
        self._by_node: dict[str, list[Sensor]] = {}
        for sensor in spec.sensors:
            self._by_node.setdefault(sensor.node, []).append(sensor)
        self._defaults = {
            s.id: {"metric": s.metric, "unit": s.unit, "node_id": s.node,
                   "zone": self.nodes[s.node].id if self.nodes[s.node].kind == "zone" else None}
            for s in spec.sensors
        }

    def report_at_most_every(self, seconds: float) -> None:
        """Raise every sensor's reporting interval to at least `seconds`.

        Under a simulated clock the simulator reports each sensor at most once
        a tick, SIMULATOR_SPEED simulated seconds apart; freshness, staleness
        and offline checks count missed reports of that interval, not of one
        the time-lapse cannot keep.
        """
        for sensor in self.sensors.values():
            sensor.interval_s = max(sensor.interval_s, seconds)

    # -- loading -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, source: str = "network") -> "Network":
        try:
            spec = NetworkFile.model_validate(data)
        except ValidationError as error:
            problems = []
            for problem in error.errors(include_url=False):
                loc = problem["loc"]
                kind = loc[0] if loc else "file"
                items = data.get(kind, []) if isinstance(data, dict) and isinstance(data.get(kind), list) else []
                problems.append(f"{_where(str(kind), items, loc)}: {problem['msg']}")
            raise NetworkFileError(source, problems) from None
        problems = cls._check_references(spec)
        if problems:
            raise NetworkFileError(source, problems)
        return cls(spec)

    @staticmethod
    def _check_references(spec: NetworkFile) -> list[str]:
        problems = []
        seen: set[str] = set()
        for kind, items in (("node", spec.nodes), ("link", spec.links), ("sensor", spec.sensors)):
            for item in items:
                if item.id in seen:
                    problems.append(f"duplicate id '{item.id}' ({kind})")
                seen.add(item.id)
        nodes = {n.id: n for n in spec.nodes}
        for link in spec.links:
            for end in (link.from_, link.to):
                if end not in nodes:
                    problems.append(f"link '{link.id}' refers to unknown node '{end}'")
            if link.from_ == link.to:
                problems.append(f"link '{link.id}' connects node '{link.from_}' to itself")
        for sensor in spec.sensors:
            if sensor.node not in nodes:
                problems.append(f"sensor '{sensor.id}' refers to unknown node '{sensor.node}'")
            if sensor.normal and sensor.normal[0] > sensor.normal[1]:
                problems.append(f"sensor '{sensor.id}' has normal range low > high")
        for node in spec.nodes:
            if node.kind == "reservoir":
                if None in (node.volume, node.min_volume, node.max_volume):
                    problems.append(f"reservoir '{node.id}' needs volume, min_volume and max_volume")
                elif not node.min_volume <= node.volume <= node.max_volume:
                    problems.append(f"reservoir '{node.id}' volume must lie within min_volume..max_volume")
            if node.kind == "zone" and (node.demand is None or node.priority is None):
                problems.append(f"zone '{node.id}' needs demand and priority")
        return problems

    # -- the registry, as the pipeline and the broadcaster see it --------------
    def defaults(self, sensor_id: str) -> dict | None:
        return self._defaults.get(sensor_id)

    def deadband(self, sensor_id: str) -> float:
        sensor = self.sensors.get(sensor_id)
        return sensor.deadband if sensor else 0.0

    def interval(self, sensor_id: str) -> float | None:
        sensor = self.sensors.get(sensor_id)
        return sensor.interval_s if sensor else None

    # -- queries -------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def sensors_at(self, node_id: str, metric: str | None = None) -> list[Sensor]:
        return [s for s in self._by_node.get(node_id, ())
                if metric is None or s.metric == metric]

    def links_into(self, node_id: str) -> list[Link]:
        return self._into.get(node_id, [])

    def links_out_of(self, node_id: str) -> list[Link]:
        return self._out.get(node_id, [])

    def total_demand(self) -> float:
        return sum(z.demand or 0.0 for z in self.of_kind("zone"))

    def to_api(self, link_status: dict[str, str] | None = None,
               link_settings: dict[str, dict] | None = None) -> dict:
        link_status, link_settings = link_status or {}, link_settings or {}
        return {
            "name": self.name,
            "nodes": [n.model_dump(exclude_none=True) for n in self.nodes.values()],
            "links": [{**link.model_dump(by_alias=True, exclude_none=True),
                       "status": link_status.get(link.id, "open"), **link_settings.get(link.id, {})}
                      for link in self.links.values()],
            "sensors": [s.model_dump(exclude_none=True) for s in self.sensors.values()],
        }
