"""Leak detection over a simulated week: detection rate, time to detect, false alarms.

The network simulation runs offline at its default pace (one tick per
simulated second, sensors on their own intervals) with randomly placed leaks
of magnitude 0.3-2 and random city-wide demand moves (baseline factor
0.8-1.2, and surges spread over every zone). Zone readings go to the leak
detector exactly as the server feeds it. One warm-up day is not scored.

    python bench/leak_week.py [--days 7] [--seed 1]

Score in the BattLeDIM style: water the detection saved (each leak's flow
from detection to its end) at EUR 0.8/m3, minus EUR 500 per false alarm.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.adapters.network_files import load_network  # noqa: E402
from app.config import BUNDLED_NETWORK, Settings  # noqa: E402
from app.services.leaks import LeakDetector  # noqa: E402
from app.services.network import Network  # noqa: E402
from app.services.simulation import LEAK_FRACTION, NetworkSimulation  # noqa: E402

DAY = 86_400.0
# Monday 2026-01-05 00:00 IST, so the week has its weekend.
START = 1_767_551_400.0
LEAKS_PER_DAY = 3
LEAK_HOURS = (0.5, 6.0)
MOVES_PER_DAY = 4
EUR_PER_M3 = 0.8
EUR_PER_FALSE_ALARM = 500.0
# A finding this long after a leak ended still counts as that leak's.
GRACE_S = 600.0
BANDS = ((0.3, 0.5), (0.5, 1.0), (1.0, 2.01))


@dataclass
class Leak:
    zone: str
    magnitude: float
    start: float
    end: float
    detected_at: float | None = None


@dataclass
class Run:
    leaks: list[Leak] = field(default_factory=list)
    false_alarms: list[tuple[str, float]] = field(default_factory=list)
    scored_days: float = 0.0


def schedule(rng: random.Random, zones: list[str], days: int) -> tuple[list[Leak], list[tuple]]:
    leaks, busy = [], {z: [] for z in zones}
    for _ in range(LEAKS_PER_DAY * days):
        for _attempt in range(20):
            zone = rng.choice(zones)
            start = START + DAY + rng.uniform(0, days * DAY - LEAK_HOURS[1] * 3600)
            end = start + rng.uniform(*LEAK_HOURS) * 3600
            if all(end + 2 * GRACE_S < s or start > e + 2 * GRACE_S for s, e in busy[zone]):
                busy[zone].append((start, end))
                leaks.append(Leak(zone, round(rng.uniform(0.3, 2.0), 2), start, end))
                break
    moves = []
    for _ in range(MOVES_PER_DAY * (days + 1)):
        at = START + rng.uniform(0.2, days + 1) * DAY
        if rng.random() < 0.5:
            moves.append((at, "baseline", round(rng.uniform(0.8, 1.2), 2), 0.0))
        else:
            moves.append((at, "surge", round(rng.uniform(0.3, 1.0), 2), rng.uniform(1800, 4 * 3600)))
    return sorted(leaks, key=lambda leak: leak.start), sorted(moves)


def simulate(days: int, seed: int, network: Network, settings: Settings, verbose: bool = False) -> Run:
    rng = random.Random(seed)
    zones = [z.id for z in network.of_kind("zone")]
    leaks, moves = schedule(rng, zones, days)
    sim = NetworkSimulation(network, seed=seed, start=START,
                            utc_offset_h=settings.local_utc_offset_h)
    detector = LeakDetector(zones, settings.leak_excess_ratio, settings.leak_pressure_drop_ratio,
                            settings.leak_night_excess_ratio, settings.local_utc_offset_h)
    sensor_node = {s.id: (s.node, s.metric) for s in network.sensors.values()
                   if s.node in detector.zones and s.metric in ("flow", "pressure")}
    # Only zone readings matter here: don't spend the run reading the rest.
    sim.due = {sensor_id: due for sensor_id, due in sim.due.items() if sensor_id in sensor_node}
    pending_leaks, pending_moves = list(leaks), list(moves)
    run = Run(leaks=leaks, scored_days=days)
    if verbose:
        for leak in leaks:
            print(f"  leak {leak.zone} m={leak.magnitude} day {(leak.start - START) / DAY:.3f}"
                  f"-{(leak.end - START) / DAY:.3f}")
        for move in moves:
            print(f"  move day {(move[0] - START) / DAY:.3f} {move[1:]}")
    end = START + (days + 1) * DAY
    t = START
    while t < end:
        t += 1.0
        while pending_moves and pending_moves[0][0] <= t:
            _, kind, value, duration = pending_moves.pop(0)
            if kind == "baseline":
                sim.set_baseline("all", value)
            else:
                for zone in zones:
                    sim.trigger("demand_surge", zone, value, duration)
        while pending_leaks and pending_leaks[0].start <= t:
            leak = pending_leaks.pop(0)
            sim.trigger("leak", leak.zone, leak.magnitude, leak.end - leak.start)
        for reading in sim.step(t):
            where = sensor_node.get(reading["sensor_id"])
            if where is None:
                continue
            for finding in detector.observe(where[0], where[1], reading["value"], t):
                if verbose:
                    print(f"  day {(t - START) / DAY:.3f} {finding.zone} suspected={finding.suspected} "
                          f"{finding.evidence()}")
                if finding.suspected:
                    judge(run, finding.zone, t)
    return run


def judge(run: Run, zone: str, t: float) -> None:
    for leak in run.leaks:
        if leak.zone == zone and leak.start <= t <= leak.end + GRACE_S:
            if leak.detected_at is None:
                leak.detected_at = t
            return
    if t >= START + DAY:
        run.false_alarms.append((zone, t))


def report(run: Run, network: Network) -> list[str]:
    lines = ["| magnitude | leaks | detected | rate | median to detect | p90 to detect |",
             "|---|---|---|---|---|---|"]
    for low, high in BANDS:
        band = [leak for leak in run.leaks if low <= leak.magnitude < high]
        hits = [leak.detected_at - leak.start for leak in band if leak.detected_at is not None]
        rate = f"{100 * len(hits) / len(band):.0f}%" if band else "-"
        median = f"{statistics.median(hits):.0f} s" if hits else "-"
        p90 = f"{sorted(hits)[min(len(hits) - 1, int(0.9 * len(hits)))]:.0f} s" if hits else "-"
        lines.append(f"| {low:.1f}-{min(high, 2.0):.1f} | {len(band)} | {len(hits)} | {rate} | {median} | {p90} |")
    strong = [leak for leak in run.leaks if leak.magnitude >= 0.5]
    strong_rate = sum(leak.detected_at is not None for leak in strong) / len(strong) if strong else float("nan")
    saved_m3 = 0.0
    for leak in run.leaks:
        if leak.detected_at is not None:
            rate_m3_per_s = LEAK_FRACTION * leak.magnitude * network.nodes[leak.zone].demand * 1000 / DAY
            saved_m3 += rate_m3_per_s * max(0.0, leak.end - leak.detected_at)
    alarms_per_day = len(run.false_alarms) / run.scored_days
    score = EUR_PER_M3 * saved_m3 - EUR_PER_FALSE_ALARM * len(run.false_alarms)
    lines += ["",
              f"- detected, magnitude >= 0.5: {100 * strong_rate:.0f}% (goal >= 90%)",
              f"- false alarms: {len(run.false_alarms)} in {run.scored_days:.0f} days "
              f"= {alarms_per_day:.2f}/day (goal < 1 per week)",
              f"- water saved by detection: {saved_m3:,.0f} m3; score EUR {score:,.0f} "
              f"(0.8/m3 saved - 500 per false alarm)"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print every finding")
    args = parser.parse_args()
    network = load_network(BUNDLED_NETWORK)
    settings = Settings(_env_file=None)
    started = time.perf_counter()
    run = simulate(args.days, args.seed, network, settings, args.verbose)
    print(f"leak_week: {args.days} simulated days (+1 warm-up), seed {args.seed}, "
          f"{len(run.leaks)} leaks, {time.perf_counter() - started:.0f} s to run")
    print("\n".join(report(run, network)))
    for zone, t in run.false_alarms[:10]:
        print(f"  false alarm: {zone} at day {(t - START) / DAY:.2f}")


if __name__ == "__main__":
    main()
