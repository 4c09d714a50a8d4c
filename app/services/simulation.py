"""A deterministic model of the network's hydraulics and water quality.

It is the simulator's physics, kept free of I/O and clocks so that a seeded
run is reproducible: `step(t)` advances to time `t` (epoch seconds of the
product's clock, the simulated one of app/domain/clock.py when
SIMULATOR_SPEED > 1) and returns the readings of every sensor due by then.
The model is simple on purpose (mass balance, not hydraulics): zone demand follows a diurnal
profile with noise, reservoirs integrate inflow minus outflow, pressures fall
as flow rises, and quality wanders near its normal range. Events change it
gradually, ramping in over EVENT_RAMP_S.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import get_args

from app.errors import InvalidInput
from app.models import EventKind
from app.services.local_time import HOUR_S, SECONDS_PER_DAY, is_weekend, local_hour
from app.services.network import TARGET_FILL, Network

EVENT_KINDS = get_args(EventKind)
# Events ramp in and out over this long, so no reading jumps without cause.
EVENT_RAMP_S = 30.0
# Fraction of a zone's base demand lost per unit of leak magnitude.
LEAK_FRACTION = 0.10
# Metres of pressure lost per unit of leak magnitude.
LEAK_PRESSURE_DROP_M = 5.0
# Extra demand per unit of surge magnitude.
SURGE_FRACTION = 0.30
# Hours over which a reservoir's refill corrects its volume error.
REFILL_HOURS = 6.0
# Static pressure at zero flow, and the loss at full capacity, of a zone (m).
ZONE_HEAD_M, ZONE_LOSS_M = 28.0, 12.0
FIRST_REPORT_S = 3.0


def _diurnal_shape(hour: float, weekend: bool) -> float:
    # Weekends: a later, lower morning peak.
    morning_at, morning = (9.0, 0.4) if weekend else (7.0, 0.6)
    return (0.45 + morning * math.exp(-((hour - morning_at) / 2.0) ** 2)
            + 0.5 * math.exp(-((hour - 19.5) / 2.5) ** 2))


_DAILY_MEAN = {weekend: sum(_diurnal_shape(m / 60, weekend) for m in range(1440)) / 1440
               for weekend in (False, True)}


def diurnal(hour: float, weekend: bool) -> float:
    """Demand multiplier with mean 1 over a day: morning and evening peaks."""
    return _diurnal_shape(hour, weekend) / _DAILY_MEAN[weekend]


@dataclass
class Event:
    id: int
    kind: str
    target: str
    magnitude: float
    start: float
    end: float

    def strength(self, t: float) -> float:
        """0..1: ramps in after start and out before end."""
        if t < self.start or t > self.end:
            return 0.0
        return min(1.0, (t - self.start) / EVENT_RAMP_S, (self.end - t) / EVENT_RAMP_S)

    def to_dict(self) -> dict:
        return {"id": self.id, "event": self.kind, "target": self.target,
                "magnitude": self.magnitude, "start": self.start, "end": self.end}


@dataclass
class NetworkSimulation:
    network: Network
    seed: int = 0
    start: float = 0.0
    events_per_hour: float = 0.0
    # Local time's offset from UTC (hours): demand follows the local day.
    utc_offset_h: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        net = self.network
        self.t = self.start
        self.zone_factor = {z.id: 1.0 for z in net.of_kind("zone")}
        self.city_factor = 1.0
        self.volume = {r.id: r.volume for r in net.of_kind("reservoir")}
        self.noise = {sid: 0.0 for sid in net.sensors}
        self.demand_noise = {z.id: 0.0 for z in net.of_kind("zone")}
        self.events: list[Event] = []
        self._next_event_id = 1
        # Every sensor reports within FIRST_REPORT_S of start (the live view
        # fills at once), staggered so they don't all fire on the same tick.
        self.due = {s.id: self.start + self.rng.uniform(0, min(s.interval_s, FIRST_REPORT_S))
                    for s in sorted(net.sensors.values(), key=lambda s: s.id)}
        self.state: dict[str, float] = {}
        self.link_flow: dict[str, float] = {}
        self._solve(0.0)

    # -- control ---------------------------------------------------------------
    def trigger(self, kind: str, target: str | None, magnitude: float, duration_s: float) -> Event:
        if kind not in EVENT_KINDS:
            raise InvalidInput("unknown event", [{"field": "event", "message": f"one of {EVENT_KINDS}"}])
        target = target or self._random_target(kind)
        self._check_target(kind, target)
        event = Event(self._next_event_id, kind, target, magnitude, self.t, self.t + duration_s)
        self._next_event_id += 1
        self.events.append(event)
        return event

    def set_baseline(self, target: str, factor: float) -> None:
        if target == "all":
            self.city_factor = factor
        elif target in self.zone_factor:
            self.zone_factor[target] = factor
        else:
            raise InvalidInput("unknown zone", [{"field": "target", "message": f"'{target}' is not a zone id or 'all'"}])

    def active_events(self) -> list[dict]:
        return [e.to_dict() for e in self.events if e.end >= self.t]

    def _targets(self, kind: str) -> list[str]:
        net = self.network
        if kind in ("leak", "demand_surge"):
            return [z.id for z in net.of_kind("zone")]
        if kind == "pump_failure":
            return [link.id for link in net.links.values() if link.kind == "pump"]
        return [s.id for s in net.of_kind("source")]

    def _random_target(self, kind: str) -> str:
        return self.rng.choice(sorted(self._targets(kind)))

    def _check_target(self, kind: str, target: str) -> None:
        if target not in self._targets(kind):
            raise InvalidInput("bad event target", [{"field": "target", "message":
                               f"'{target}' is not a valid target for {kind}"}])

    # -- time --------------------------------------------------------------------
    def step(self, t: float) -> list[dict]:
        """Advance to time `t`; return readings `[{"sensor_id", "value"}]` now due."""
        dt = max(0.0, t - self.t)
        self.t = t
        if self.events_per_hour and dt:
            if self.rng.random() < self.events_per_hour * dt / HOUR_S:
                kind = self.rng.choice(EVENT_KINDS)
                self.trigger(kind, None, round(self.rng.uniform(0.5, 2.0), 2),
                             self.rng.uniform(300, 1800))
        self.events = [e for e in self.events if e.end + EVENT_RAMP_S >= t]
        self._solve(dt)
        readings = []
        for sensor_id, due in self.due.items():
            if due <= t:
                interval = self.network.sensors[sensor_id].interval_s
                # Skip missed slots rather than bursting after a pause.
                self.due[sensor_id] = max(due + interval, t)
                readings.append({"sensor_id": sensor_id, "value": self._read(sensor_id)})
        return readings

    def read_all(self, t: float) -> list[dict]:
        """Advance to `t` and read every sensor, due or not (load generation)."""
        self.step(t)
        return [{"sensor_id": sensor_id, "value": self._read(sensor_id)} for sensor_id in self.due]

    # -- physics -------------------------------------------------------------------
    def _strength(self, kind: str, target: str) -> float:
        return max((e.strength(self.t) * e.magnitude for e in self.events
                    if e.kind == kind and e.target == target), default=0.0)

    def _availability(self, link) -> float:
        """1 for a working link, falling to 0 as a pump failure ramps in."""
        if link.kind != "pump":
            return 1.0
        return 1 - min(1.0, self._strength("pump_failure", link.id))

    def _solve(self, dt_model: float) -> None:
        """Flows for this instant; integrate reservoir volumes over `dt_model` seconds.

        Demand is requested backwards from zones to sources (reservoirs ask
        for their outflow plus a refill towards TARGET_FILL), split over
        incoming links by available capacity; supply then flows forwards,
        limited by source and link capacity, with reservoirs covering their
        outlets from storage while they hold water.
        """
        net, rng = self.network, self.rng
        moment = self.t
        profile = diurnal(local_hour(moment, self.utc_offset_h), is_weekend(moment, self.utc_offset_h))
        capacity = {link.id: link.capacity * self._availability(link) for link in net.links.values()}

        want: dict[str, float] = {}
        for zone in net.of_kind("zone"):
            noise = self.demand_noise[zone.id] = 0.98 * self.demand_noise[zone.id] + rng.gauss(0, 0.004)
            demand = (zone.demand * self.zone_factor[zone.id] * self.city_factor * profile
                      * (1 + noise) * (1 + SURGE_FRACTION * self._strength("demand_surge", zone.id)))
            want[zone.id] = demand + LEAK_FRACTION * zone.demand * self._strength("leak", zone.id)

        requested: dict[str, float] = {}
        for node_id in reversed(self._order):
            node = net.nodes[node_id]
            out = sum(requested.get(link.id, 0.0) for link in net.links_out_of(node_id))
            if node.kind == "zone":
                need = want[node_id]
            elif node.kind == "reservoir":
                refill = (TARGET_FILL * node.max_volume - self.volume[node_id]) / (REFILL_HOURS / 24)
                need = max(0.0, out + refill)
            else:
                need = out
            feeds = net.links_into(node_id)
            room = sum(capacity[link.id] for link in feeds)
            for link in feeds:
                requested[link.id] = min(capacity[link.id], need * capacity[link.id] / room) if room else 0.0
            requested[node_id] = out

        actual: dict[str, float] = {}
        through: dict[str, float] = {}
        for node_id in self._order:
            node = net.nodes[node_id]
            out = requested[node_id]
            if node.kind == "source":
                supply = min(out, node.capacity * (1 - min(1.0, self._strength("source_outage", node_id))))
            else:
                supply = sum(actual.get(link.id, 0.0) for link in net.links_into(node_id))
            deliverable = out if node.kind == "reservoir" and self.volume[node_id] > 0 else supply
            ratio = min(1.0, deliverable / out) if out else 0.0
            for link in net.links_out_of(node_id):
                actual[link.id] = requested[link.id] * ratio
            through[node_id] = supply
            if node.kind == "reservoir":
                outflow = out * ratio
                through[node_id + ":out"] = outflow
                net_ml = (supply - outflow) * dt_model / SECONDS_PER_DAY
                self.volume[node_id] = min(node.max_volume, max(0.0, self.volume[node_id] + net_ml))
        self.link_flow = actual
        self.state = through

    @property
    def _order(self) -> list[str]:
        """Nodes upstream-first (Kahn's algorithm; loops are broken arbitrarily)."""
        if not hasattr(self, "_order_cache"):
            net = self.network
            indegree = {n: 0 for n in net.nodes}
            for link in net.links.values():
                indegree[link.to] += 1
            ready = sorted(n for n, d in indegree.items() if d == 0)
            order: list[str] = []
            while ready:
                node = ready.pop()
                order.append(node)
                for link in net.links_out_of(node):
                    indegree[link.to] -= 1
                    if indegree[link.to] == 0:
                        ready.append(link.to)
            order += sorted(n for n in net.nodes if n not in set(order))
            self._order_cache = order
        return self._order_cache

    def _node_flow(self, node_id: str) -> float:
        return self.state.get(node_id, 0.0)

    def _wander(self, sensor_id: str, scale: float) -> float:
        noise = self.noise[sensor_id] = 0.9 * self.noise[sensor_id] + self.rng.gauss(0, 0.3)
        return noise * scale

    def _read(self, sensor_id: str) -> float:
        sensor = self.network.sensors[sensor_id]
        node = self.network.nodes[sensor.node]
        low, high = sensor.normal or (0.0, 1.0)
        metric = sensor.metric
        if metric == "flow" and getattr(sensor, "link", None):
            # A flow meter on a link (an imported network's pumps).
            value = self.link_flow.get(sensor.link, 0.0) * (1 + self._wander(sensor_id, 0.004))
        elif metric == "flow":
            out = node.kind == "reservoir" and sensor_id.endswith("_out")
            value = self.state.get(node.id + ":out" if out else node.id, 0.0)
            value *= 1 + self._wander(sensor_id, 0.004)
        elif metric == "level":
            value = 100 * self.volume[node.id] / node.max_volume + self._wander(sensor_id, 0.05)
        elif metric == "pressure":
            load = min(1.5, self._node_flow(node.id) / (node.capacity or 1.0))
            if node.kind == "zone":
                value = ZONE_HEAD_M - ZONE_LOSS_M * load ** 2
                value -= LEAK_PRESSURE_DROP_M * self._strength("leak", node.id)
            else:  # a pump curve: head falls as flow rises
                value = high - (high - low) * 0.6 * load ** 2
            value += self._wander(sensor_id, 0.15)
        elif metric == "power":
            # kWh/m3 x m3/h -> kW; 1 MLD = 41.67 m3/h.
            value = sum(link.energy * self.link_flow.get(link.id, 0.0) * 41.67
                        for link in self.network.links_out_of(node.id)) / 1000
        else:
            value = (low + high) / 2 + self._wander(sensor_id, (high - low) * 0.05)
            value += self._contamination(node.id, metric)
        if metric in ("flow", "level", "power", "turbidity", "fc", "bod", "chlorine", "tds"):
            value = max(0.0, value)
        return round(value, 3)

    def _contamination(self, node_id: str, metric: str) -> float:
        strength = self._strength("contamination", node_id)
        if not strength:
            return 0.0
        rise = {"turbidity": 40.0, "fc": 9000.0, "bod": 6.0, "do": -3.0, "ph": -0.8}
        return rise.get(metric, 0.0) * strength
