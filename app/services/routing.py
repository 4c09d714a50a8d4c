"""The plan as one linear programme over the horizon (model predictive control), on HiGHS.

Pure: inputs in, plan out, no I/O and no clock. For each of T steps of
`step_h` hours (all flows in MLD, volumes in ML):
  f[t,l]     flow on each link, 0 .. capacity x opening (0 when isolated);
             a bidirectional pipe may also carry down to -capacity
  s[t,i]     output of each source, 0 .. capacity (0 when excluded, less in an outage)
  short[t,z] shortfall of each zone, 0 .. demand of that step
  v[t,r]     each reservoir's volume at the end of the step, min .. max
  below[t,r] how far v[t,r] is under the reserve (RESERVE_SHARE of the range above min)
and once: deficit_r (the final volume below its target fill) and up_l, dn_l
(how far the first step's flows move from the plan in force).
Constraints: mass balance at every node and step (in - out + supply +
shortfall = demand; at reservoirs in - out = (v[t] - v[t-1]) / step), and
deficit_r >= target_r - v[T-1,r], below[t,r] >= reserve_r - v[t,r].
Objective (lexicographic by weights): priority-weighted shortfall, then
storage below the reserve and below target at the end, then pumping energy at each step's tariff
and source cost, then a small penalty on changing the plan so plans don't
flap. Only the first step is applied; the rest forecasts what the network
will do, and is re-planned as data arrives.

The model is built once per network and horizon (highspy directly: scipy's
linprog rebuilds its model every call); each solve changes only bounds,
costs and right-hand sides, and HiGHS starts from the previous basis.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy import sparse

from app.services.local_time import HOUR_S
from app.services.network import TARGET_FILL, Network

# Length of one planning step (hours), unless the model is given another.
PLAN_STEP_H = 1.0
# Electricity tariff (Rs/kWh) when the inputs give none (a flat rate).
TARIFF_RS_PER_KWH = 7.0
M3_PER_ML = 1000.0
# Shortfall penalty (Rs per ML) of the lowest priority, and the factor between
# priority levels. The lowest weight already dwarfs any path's cost (about
# 15,000 Rs/ML for three lifts and the dearest source), and each level is
# worth more than a whole unit of every lower level, so a senior zone always wins.
SHORTFALL_BASE = 1e6
PRIORITY_STEP = 10.0
# Penalty (Rs per ML) for ending the horizon below target storage: above any
# path cost, below any shortfall, so storage refills only from spare capacity.
STORAGE_WEIGHT = 5e4
# A reserve above each reservoir's minimum (share of its range) that the plan dips into
# only to avoid a shortfall, never to save energy: a hedge against forecast error.
# Rs per ML below the reserve per step: above any tariff saving, far below any shortfall.
RESERVE_SHARE = 0.15
RESERVE_WEIGHT = 2e4
# Penalty (Rs per MLD changed) against flapping between equal-cost plans.
CHANGE_PENALTY = 1.0


@dataclass
class RoutingInputs:
    demand: dict[str, float]                                 # zone -> MLD (the first step)
    volume: dict[str, float] = field(default_factory=dict)   # reservoir -> ML now
    link_factor: dict[str, float] = field(default_factory=dict)  # link -> 0..1
    isolated: set[str] = field(default_factory=set)          # node or link ids
    excluded_sources: dict[str, str] = field(default_factory=dict)  # source -> reason
    previous: dict[str, float] = field(default_factory=dict)  # link -> last planned MLD
    # Sources delivering well below plan (an outage): source -> MLD available, and why.
    available: dict[str, float] = field(default_factory=dict)
    outages: dict[str, str] = field(default_factory=dict)
    # Leaking zones held at what the city implies: zone -> (metered, planned) MLD.
    held: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Operator settings behind link factors and isolations, in words: id -> text.
    restrictions: dict[str, str] = field(default_factory=dict)
    # Demand per planning step (zone -> MLD); None: `demand` for every step.
    demand_steps: list[dict[str, float]] | None = None
    # Tariff per step (Rs/kWh); None: TARIFF_RS_PER_KWH throughout.
    tariff: list[float] | None = None
    start: float | None = None                                # epoch s of the first step


@dataclass
class PlanStep:
    start: float | None
    tariff: float
    flows: dict[str, float]
    sources: dict[str, float]
    shortfall: dict[str, float]
    demand: dict[str, float]
    volume_end: dict[str, float]
    energy_kwh: float
    cost: float


@dataclass
class RoutingPlan:
    status: str                   # optimal | infeasible | degraded
    objective: float | None
    solve_ms: float
    flows: dict[str, float]       # the first step, which is applied
    sources: dict[str, float]
    shortfall: dict[str, float]
    demand: dict[str, float]
    volume_end: dict[str, float]
    message: str = ""
    steps: list[PlanStep] = field(default_factory=list)
    step_h: float = PLAN_STEP_H

    @classmethod
    def from_dict(cls, data: dict) -> "RoutingPlan":
        """Back from `dataclasses.asdict` (a plan shared between cluster instances)."""
        return cls(**{**data, "steps": [PlanStep(**step) for step in data.get("steps", [])]})


def horizon_within(network: Network, wanted: int, max_columns: int) -> int:
    """The longest horizon (<= `wanted` steps) whose LP has at most `max_columns` variables:
    a re-plan must not stall the server on a network of thousands of links."""
    # A step's columns: each link's flow, each source's output, each zone's shortfall, and each
    # reservoir's volume and how far it is below its reserve.
    per_step = len(network.links) + len(network.of_kind("source")) + len(network.of_kind("zone")) \
        + 2 * len(network.of_kind("reservoir"))
    fixed = len(network.of_kind("reservoir")) + 2 * len(network.links)
    return max(1, min(wanted, (max_columns - fixed) // max(per_step, 1)))


class RoutingModel:
    """The LP of one network over `horizon` steps; `solve()` may be called as often as needed."""

    def __init__(self, network: Network, horizon: int = 1, step_h: float = PLAN_STEP_H):
        self.network = network
        self.horizon, self.step_h = horizon, step_h
        self.step_days = step_h / 24
        self.links = list(network.links.values())
        self.sources = network.of_kind("source")
        self.zones = network.of_kind("zone")
        self.reservoirs = network.of_kind("reservoir")
        node_ids = list(network.nodes)
        row_of = {node_id: i for i, node_id in enumerate(node_ids)}
        nl, ns, nz, nr = len(self.links), len(self.sources), len(self.zones), len(self.reservoirs)
        self.nl, self.ns, self.nz, self.nr, self.nn = nl, ns, nz, nr, len(node_ids)
        T = horizon
        # Columns: per step [f | s | short | v], then deficit, up, dn.
        self.per_step = nl + ns + nz + nr
        self.col_def = T * self.per_step
        self.col_below = self.col_def + nr
        self.col_up = self.col_below + T * nr
        self.col_dn = self.col_up + nl
        self.nvars = self.col_dn + nl
        # Rows: per step one balance per node, then change rows, then storage rows.
        self.row_change = T * self.nn
        self.row_store = self.row_change + nl
        self.row_reserve = self.row_store + nr
        self.nrows = self.row_reserve + T * nr

        rows, cols, vals = [], [], []
        link_to = np.array([row_of[link.to] for link in self.links], dtype=int)
        link_from = np.array([row_of[link.from_] for link in self.links], dtype=int)
        src_row = np.array([row_of[s.id] for s in self.sources], dtype=int)
        zone_row = np.array([row_of[z.id] for z in self.zones], dtype=int)
        res_row = np.array([row_of[r.id] for r in self.reservoirs], dtype=int)
        for t in range(T):
            base_col, base_row = t * self.per_step, t * self.nn
            f = base_col + np.arange(nl)
            rows += [base_row + link_to, base_row + link_from]
            cols += [f, f]
            vals += [np.ones(nl), -np.ones(nl)]
            rows.append(base_row + src_row)
            cols.append(base_col + nl + np.arange(ns))
            vals.append(np.ones(ns))
            rows.append(base_row + zone_row)
            cols.append(base_col + nl + ns + np.arange(nz))
            vals.append(np.ones(nz))
            # Storage: -(v[t] - v[t-1]) / step enters the reservoir's balance.
            v = base_col + nl + ns + nz + np.arange(nr)
            rows.append(base_row + res_row)
            cols.append(v)
            vals.append(np.full(nr, -1.0 / self.step_days))
            if t > 0:
                rows.append(base_row + res_row)
                cols.append(v - self.per_step)
                vals.append(np.full(nr, 1.0 / self.step_days))
        # Change rows: f[0,l] - up_l + dn_l = previous_l.
        for block in (np.arange(nl), self.col_up + np.arange(nl), self.col_dn + np.arange(nl)):
            rows.append(self.row_change + np.arange(nl))
            cols.append(block)
        vals += [np.ones(nl), -np.ones(nl), np.ones(nl)]
        # Storage rows: -v[T-1,r] - deficit_r <= -target_r.
        last_v = (T - 1) * self.per_step + nl + ns + nz + np.arange(nr)
        for block in (last_v, self.col_def + np.arange(nr)):
            rows.append(self.row_store + np.arange(nr))
            cols.append(block)
            vals.append(-np.ones(nr))
        # Reserve rows: -v[t,r] - below[t,r] <= -reserve_r.
        for t in range(T):
            v = t * self.per_step + nl + ns + nz + np.arange(nr)
            for block in (v, self.col_below + t * nr + np.arange(nr)):
                rows.append(self.row_reserve + t * nr + np.arange(nr))
                cols.append(block)
                vals.append(-np.ones(nr))
        matrix = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(self.nrows, self.nvars))

        # What depends only on the network.
        self.energy = np.array([link.energy for link in self.links])
        self.source_cost = np.array([s.cost or 0.0 for s in self.sources])
        self.source_energy = np.array([s.energy or 0.0 for s in self.sources])
        levels = sorted({zone.priority for zone in self.zones})
        self.short_weight = np.array([SHORTFALL_BASE * PRIORITY_STEP ** levels.index(z.priority)
                                      for z in self.zones])
        self.capacity = np.array([link.capacity for link in self.links])
        self.bidirectional = np.array([link.bidirectional for link in self.links], dtype=bool)
        self.ends = [(link.id, link.from_, link.to) for link in self.links]

        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.nvars, self.nrows
        lp.col_cost_ = np.zeros(self.nvars)
        lp.col_lower_ = np.zeros(self.nvars)
        lp.col_upper_ = np.full(self.nvars, highspy.kHighsInf)
        row_lower = np.zeros(self.nrows)
        row_lower[self.row_store:] = -highspy.kHighsInf
        lp.row_lower_, lp.row_upper_ = row_lower, np.zeros(self.nrows)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = self.nvars, self.nrows
        self.highs.passModel(lp)
        self._all_cols = np.arange(self.nvars, dtype=np.int32)
        self._all_rows = np.arange(self.nrows, dtype=np.int32)

    # -- one solve ------------------------------------------------------------------------
    def solve(self, inputs: RoutingInputs) -> RoutingPlan:
        started = time.perf_counter()
        T, nl, ns, nz, nr = self.horizon, self.nl, self.ns, self.nz, self.nr
        steps = self._demand_steps(inputs)
        tariff = np.array((inputs.tariff or [TARIFF_RS_PER_KWH] * T)[:T], dtype=float)
        if len(tariff) < T:
            tariff = np.concatenate([tariff, np.full(T - len(tariff), tariff[-1] if len(tariff) else TARIFF_RS_PER_KWH)])

        # Bounds.
        isolated = inputs.isolated
        factor = np.array([inputs.link_factor.get(link_id, 1.0) for link_id, _, _ in self.ends])
        closed = np.array([bool({a, b, c} & isolated) for a, b, c in self.ends])
        link_upper = np.where(closed, 0.0, self.capacity * np.clip(factor, 0.0, 1.0))
        link_lower = np.where(self.bidirectional, -link_upper, 0.0)
        source_upper = np.array([0.0 if s.id in isolated or s.id in inputs.excluded_sources
                                 else min(s.capacity, inputs.available.get(s.id, s.capacity))
                                 for s in self.sources])
        v_lower = np.array([r.min_volume for r in self.reservoirs], dtype=float)
        v_upper = np.array([r.max_volume for r in self.reservoirs], dtype=float)
        demand = np.array([[max(0.0, step.get(z.id, z.demand)) for z in self.zones] for step in steps])
        lower = np.zeros(self.nvars)
        upper = np.full(self.nvars, highspy.kHighsInf)
        cost = np.zeros(self.nvars)
        for t in range(T):
            b = t * self.per_step
            lower[b:b + nl], upper[b:b + nl] = link_lower, link_upper
            upper[b + nl:b + nl + ns] = source_upper
            upper[b + nl + ns:b + nl + ns + nz] = demand[t]
            lower[b + nl + ns + nz:b + self.per_step] = v_lower
            upper[b + nl + ns + nz:b + self.per_step] = v_upper
            # Rs per step: rates (MLD) x step (days) x Rs per ML.
            cost[b:b + nl] = self.energy * tariff[t] * M3_PER_ML * self.step_days
            cost[b + nl:b + nl + ns] = (self.source_cost + self.source_energy * tariff[t] * M3_PER_ML) * self.step_days
            cost[b + nl + ns:b + nl + ns + nz] = self.short_weight * self.step_days
        cost[self.col_def:self.col_def + nr] = STORAGE_WEIGHT
        cost[self.col_below:self.col_up] = RESERVE_WEIGHT
        # Without a previous plan there is nothing to hold on to.
        cost[self.col_up:] = CHANGE_PENALTY if inputs.previous else 0.0

        # Right-hand sides.
        rhs_lower = np.zeros(self.nrows)
        rhs_upper = np.zeros(self.nrows)
        zone_rows = [self.network_row(z.id) for z in self.zones]
        for t in range(T):
            rhs_lower[[t * self.nn + r for r in zone_rows]] = demand[t]
        volume_now = np.array([inputs.volume.get(r.id, r.volume) for r in self.reservoirs], dtype=float)
        res_rows = [self.network_row(r.id) for r in self.reservoirs]
        rhs_lower[res_rows] = -volume_now / self.step_days
        rhs_lower[self.row_change:self.row_store] = [inputs.previous.get(link_id, 0.0) for link_id, _, _ in self.ends]
        rhs_upper[:self.row_store] = rhs_lower[:self.row_store]
        rhs_lower[self.row_store:] = -highspy.kHighsInf
        rhs_upper[self.row_store:self.row_reserve] = -TARGET_FILL * v_upper
        rhs_upper[self.row_reserve:] = np.tile(-(v_lower + RESERVE_SHARE * (v_upper - v_lower)), T)

        h = self.highs
        h.changeColsBounds(self.nvars, self._all_cols, lower, upper)
        h.changeColsCost(self.nvars, self._all_cols, cost)
        h.changeRowsBounds(self.nrows, self._all_rows, rhs_lower, rhs_upper)
        h.run()
        status = h.getModelStatus()
        solve_ms = (time.perf_counter() - started) * 1000
        demand_of = {z.id: float(demand[0][k]) for k, z in enumerate(self.zones)}
        if status == highspy.HighsModelStatus.kInfeasible:
            h.clearSolver()     # start the next solve afresh, not from this basis
            return RoutingPlan("infeasible", None, solve_ms, {}, {}, {}, demand_of, {},
                               message="no plan meets every bound (storage, capacity)")
        if status != highspy.HighsModelStatus.kOptimal:
            h.clearSolver()
            return RoutingPlan("degraded", None, solve_ms, {}, {}, {}, demand_of, {},
                               message=h.modelStatusToString(status))
        x = np.asarray(h.getSolution().col_value)
        plan_steps = [self._step(x, t, demand[t], tariff[t], inputs) for t in range(T)]
        first = plan_steps[0]
        return RoutingPlan("optimal", float(h.getInfo().objective_function_value), solve_ms,
                           first.flows, first.sources, first.shortfall, first.demand, first.volume_end,
                           steps=plan_steps, step_h=self.step_h)

    def network_row(self, node_id: str) -> int:
        if not hasattr(self, "_row_of"):
            self._row_of = {node_id: i for i, node_id in enumerate(self.network.nodes)}
        return self._row_of[node_id]

    def _demand_steps(self, inputs: RoutingInputs) -> list[dict[str, float]]:
        given = inputs.demand_steps or [inputs.demand]
        return [given[min(t, len(given) - 1)] for t in range(self.horizon)]

    def _step(self, x: np.ndarray, t: int, demand: np.ndarray, tariff: float, inputs: RoutingInputs) -> PlanStep:
        b, nl, ns, nz = t * self.per_step, self.nl, self.ns, self.nz
        flows = x[b:b + nl]
        sources = x[b + nl:b + nl + ns]
        # kWh: kWh/m3 x MLD x days x m3/ML.
        energy = (float(self.energy @ np.maximum(flows, 0.0)) + float(self.source_energy @ sources)) \
            * self.step_days * M3_PER_ML
        cost = energy * tariff + float(self.source_cost @ sources) * self.step_days
        start = inputs.start + t * self.step_h * HOUR_S if inputs.start is not None else None
        return PlanStep(
            start=start, tariff=float(tariff),
            flows={link_id: _clean(flows[j]) for j, (link_id, _, _) in enumerate(self.ends)},
            sources={s.id: _clean(sources[k]) for k, s in enumerate(self.sources)},
            shortfall={z.id: _clean(x[b + nl + ns + k]) for k, z in enumerate(self.zones)},
            demand={z.id: float(demand[k]) for k, z in enumerate(self.zones)},
            volume_end={r.id: _clean(x[b + nl + ns + nz + k]) for k, r in enumerate(self.reservoirs)},
            energy_kwh=round(energy, 1), cost=round(cost, 1))


def _clean(value: float) -> float:
    """Round away solver noise (1e-9 flows) for stable plans and readable output."""
    return round(float(value), 3) + 0.0
