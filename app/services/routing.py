"""Optimal water routing as a linear programme, solved by HiGHS (scipy).

Variables, all in MLD except volumes (ML):
  f_l        flow on each link, 0 .. capacity x opening (0 when isolated);
             a bidirectional pipe may also carry down to -capacity
  s_i        output of each source, 0 .. capacity (0 when excluded)
  short_z    shortfall of each zone, 0 .. demand
  v_r        each reservoir's volume at the end of the step, min .. max
  deficit_r  how far v_r ends below its target fill
  up_l, dn_l how much f_l moves from the previous plan
Constraints:
  mass balance at every node: in - out + supply + shortfall = demand
  (reservoirs: in - out = (v_r - volume now) / step), and
  deficit_r >= target_r - v_r.
Objective (lexicographic by weights): priority-weighted shortfall, then
storage below target, then pumping energy and source cost, then a small
penalty on changing the plan so plans don't flap.

The constraint matrix's structure depends only on the network, so it is
built once; each solve only refreshes bounds, costs and right-hand sides.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from app.services.network import Network

# Length of one planning step (hours): reservoir balance is taken over it.
PLAN_STEP_H = 1.0
# Electricity tariff (Rs/kWh) turning pumping energy into cost.
TARIFF_RS_PER_KWH = 7.0
M3_PER_ML = 1000.0
# Shortfall penalty (Rs per ML) of the lowest priority, and the factor between
# priority levels. The lowest weight already dwarfs any path's cost (about
# 15,000 Rs/ML for three lifts and the dearest source), and each level is
# worth more than a whole unit of every lower level, so a senior zone always wins.
SHORTFALL_BASE = 1e6
PRIORITY_STEP = 10.0
# Penalty (Rs per ML) for ending the step below target storage: above any
# path cost, below any shortfall, so storage refills only from spare capacity.
STORAGE_WEIGHT = 5e4
TARGET_FILL = 0.6
# Penalty (Rs per MLD changed) against flapping between equal-cost plans.
CHANGE_PENALTY = 1.0


@dataclass
class RoutingInputs:
    demand: dict[str, float]                                 # zone -> MLD
    volume: dict[str, float] = field(default_factory=dict)   # reservoir -> ML now
    link_factor: dict[str, float] = field(default_factory=dict)  # link -> 0..1
    isolated: set[str] = field(default_factory=set)          # node or link ids
    excluded_sources: dict[str, str] = field(default_factory=dict)  # source -> reason
    previous: dict[str, float] = field(default_factory=dict)  # link -> last planned MLD


@dataclass
class RoutingPlan:
    status: str                   # optimal | infeasible | degraded
    objective: float | None
    solve_ms: float
    flows: dict[str, float]
    sources: dict[str, float]
    shortfall: dict[str, float]
    demand: dict[str, float]
    volume_end: dict[str, float]
    message: str = ""


class RoutingModel:
    """The LP of one network; `solve()` may be called as often as needed."""

    def __init__(self, network: Network):
        self.network = network
        self.links = list(network.links.values())
        self.sources = network.of_kind("source")
        self.zones = network.of_kind("zone")
        self.reservoirs = network.of_kind("reservoir")
        node_ids = list(network.nodes)
        row_of = {node_id: i for i, node_id in enumerate(node_ids)}
        nl, ns, nz, nr = len(self.links), len(self.sources), len(self.zones), len(self.reservoirs)
        self.nl, self.ns, self.nz, self.nr = nl, ns, nz, nr
        # Column offsets of each variable block.
        self.col_f, self.col_s = 0, nl
        self.col_short = nl + ns
        self.col_v = self.col_short + nz
        self.col_def = self.col_v + nr
        self.col_up = self.col_def + nr
        self.col_dn = self.col_up + nl
        self.nvars = self.col_dn + nl
        step_days = PLAN_STEP_H / 24
        self.step_days = step_days

        rows, cols, vals = [], [], []
        for j, link in enumerate(self.links):
            rows += [row_of[link.to], row_of[link.from_]]
            cols += [j, j]
            vals += [1.0, -1.0]
        # Supply, shortfall and the change of storage enter their node's balance.
        for column, node_id, coefficient in (
                [(self.col_s + k, s.id, 1.0) for k, s in enumerate(self.sources)]
                + [(self.col_short + k, z.id, 1.0) for k, z in enumerate(self.zones)]
                + [(self.col_v + k, r.id, -1.0 / step_days) for k, r in enumerate(self.reservoirs)]):
            rows.append(row_of[node_id])
            cols.append(column)
            vals.append(coefficient)
        # Change rows: f_l - up_l + dn_l = previous_l.
        base = len(node_ids)
        for j in range(nl):
            rows += [base + j] * 3
            cols += [j, self.col_up + j, self.col_dn + j]
            vals += [1.0, -1.0, 1.0]
        self.A_eq = sparse.csc_matrix((vals, (rows, cols)), shape=(base + nl, self.nvars))
        self.n_nodes = base
        # Storage rows: -v_r - deficit_r <= -target_r.
        ub_rows = [k for k in range(nr)] * 2
        ub_cols = [self.col_v + k for k in range(nr)] + [self.col_def + k for k in range(nr)]
        self.A_ub = sparse.csc_matrix(([-1.0] * (2 * nr), (ub_rows, ub_cols)), shape=(nr, self.nvars)) if nr else None
        self.row_of = row_of

        # Costs that depend only on the network.
        cost = np.zeros(self.nvars)
        for j, link in enumerate(self.links):
            cost[j] = link.energy * TARIFF_RS_PER_KWH * M3_PER_ML
        for k, source in enumerate(self.sources):
            cost[self.col_s + k] = (source.cost or 0.0) + (source.energy or 0.0) * TARIFF_RS_PER_KWH * M3_PER_ML
        levels = sorted({zone.priority for zone in self.zones})
        for k, zone in enumerate(self.zones):
            cost[self.col_short + k] = SHORTFALL_BASE * PRIORITY_STEP ** levels.index(zone.priority)
        # Flows are rates (MLD); over one step they move rate x step ML. Scale
        # so every term is in Rs per step and comparable with storage (ML).
        cost[:self.col_v] *= step_days
        cost[self.col_def:self.col_def + nr] = STORAGE_WEIGHT
        cost[self.col_up:] = CHANGE_PENALTY
        self.cost = cost
        self.capacity = np.array([link.capacity for link in self.links])
        self.bidirectional = np.array([link.bidirectional for link in self.links], dtype=bool)
        self.target = np.array([TARGET_FILL * r.max_volume for r in self.reservoirs])

    def solve(self, inputs: RoutingInputs) -> RoutingPlan:
        started = time.perf_counter()
        nl = self.nl
        lower = np.zeros(self.nvars)
        upper = np.full(self.nvars, np.inf)

        isolated = inputs.isolated
        factor = np.array([inputs.link_factor.get(link.id, 1.0) for link in self.links])
        closed = np.array([link.id in isolated or link.from_ in isolated or link.to in isolated
                           for link in self.links])
        upper[:nl] = np.where(closed, 0.0, self.capacity * np.clip(factor, 0.0, 1.0))
        lower[:nl] = np.where(self.bidirectional, -upper[:nl], 0.0)
        for k, source in enumerate(self.sources):
            off = source.id in isolated or source.id in inputs.excluded_sources
            upper[self.col_s + k] = 0.0 if off else source.capacity
        demand = np.array([max(0.0, inputs.demand.get(z.id, z.demand)) for z in self.zones])
        upper[self.col_short:self.col_short + self.nz] = demand
        for k, glr in enumerate(self.reservoirs):
            lower[self.col_v + k] = glr.min_volume
            upper[self.col_v + k] = glr.max_volume

        b_eq = np.zeros(self.A_eq.shape[0])
        for k, zone in enumerate(self.zones):
            b_eq[self.row_of[zone.id]] = demand[k]
        volume_now = np.array([inputs.volume.get(r.id, r.volume) for r in self.reservoirs])
        for k, glr in enumerate(self.reservoirs):
            b_eq[self.row_of[glr.id]] = -volume_now[k] / self.step_days
        previous = np.array([inputs.previous.get(link.id, 0.0) for link in self.links])
        b_eq[self.n_nodes:] = previous
        # Without a previous plan there is nothing to hold on to.
        cost = self.cost.copy()
        if not inputs.previous:
            cost[self.col_up:] = 0.0

        result = linprog(cost, A_ub=self.A_ub, b_ub=-self.target if self.nr else None,
                         A_eq=self.A_eq, b_eq=b_eq, bounds=np.column_stack([lower, upper]),
                         method="highs")
        solve_ms = (time.perf_counter() - started) * 1000
        demand_of = {z.id: float(demand[k]) for k, z in enumerate(self.zones)}
        if result.status == 2:
            return RoutingPlan("infeasible", None, solve_ms, {}, {}, {}, demand_of, {},
                               message=result.message)
        if result.status != 0:
            return RoutingPlan("degraded", None, solve_ms, {}, {}, {}, demand_of, {},
                               message=result.message)
        x = result.x
        return RoutingPlan(
            status="optimal",
            objective=float(result.fun),
            solve_ms=solve_ms,
            flows={link.id: _clean(x[j]) for j, link in enumerate(self.links)},
            sources={s.id: _clean(x[self.col_s + k]) for k, s in enumerate(self.sources)},
            shortfall={z.id: _clean(x[self.col_short + k]) for k, z in enumerate(self.zones)},
            demand=demand_of,
            volume_end={r.id: _clean(x[self.col_v + k]) for k, r in enumerate(self.reservoirs)},
        )


def _clean(value: float) -> float:
    """Round away solver noise (1e-9 flows) for stable plans and readable output."""
    return round(float(value), 3) + 0.0
