"""When to re-plan: on significant change (debounced), and at least every `interval_s`.

`interval_s` is clock time: under a simulated clock the plan is renewed as
often in simulated hours as in real time, down to TIME_LAPSE_MIN_WAIT_S of
real time between periodic runs (a 300x clock would otherwise re-plan ten
times a second). The debounce is real time: it lets a burst of requests settle.

Ingest only ever flags that a re-plan is wanted, with the reason in words
(the reasons become the decision's trigger). The planning itself runs in one
background task, never on the ingest path.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from app.domain.clock import Clock
from app.domain.records import Alarm
from app.services.network import Network

logger = logging.getLogger(__name__)

# Reservoir level change (percentage points) that triggers a re-plan.
LEVEL_TRIGGER_POINTS = 5.0
# Under a fast clock, the shortest real wait between periodic re-plans (s), or
# `interval_s` if that is shorter: the solver's CPU is real.
TIME_LAPSE_MIN_WAIT_S = 5.0


class ReplanScheduler:
    def __init__(self, network: Network, run_once: Callable[[list[str]], object], spawn: Callable,
                 sleep: Callable[[float], None], *, clock: Clock, interval_s: float, debounce_s: float,
                 demand_trigger: float):
        self.network = network
        self.run_once = run_once
        self.spawn = spawn
        self.sleep = sleep
        self.clock = clock
        self.interval_s = interval_s
        self.debounce_s = debounce_s
        self.demand_trigger = demand_trigger
        self.planned_demand: dict[str, float] = {}   # zone -> MLD the last plan served
        self.planned_levels: dict[str, float] = {}   # reservoir -> % when last planned
        self._why: list[str] = []
        self._wake = threading.Event()
        self._running = False

    def request(self, why: str) -> None:
        """Ask for a re-plan soon; `why` becomes part of the decision's trigger."""
        if why not in self._why:
            self._why.append(why)
        self._wake.set()

    def take_reasons(self) -> list[str]:
        why, self._why = self._why, []
        return why

    # -- triggers --------------------------------------------------------------------
    def on_control(self, control: dict) -> None:
        if control["action"] in ("set_valve", "set_pump", "isolate", "restore"):
            verb = {"isolate": "isolated", "restore": "restored"}.get(control["action"], "set")
            value = "" if control["action"] in ("isolate", "restore") else f" to {control['value']}"
            self.request(f"operator {control['operator']} {verb} {control['target']}{value}")

    def on_alert(self, alert: Alarm) -> None:
        """Critical quality at a source changes which sources may be used."""
        node = self.network.nodes.get(alert.node_id or "")
        if node is not None and node.kind == "source" and alert.condition.startswith("quality"):
            self.request(f"{alert.severity} {alert.metric} alert at {node.name}")

    def observe(self, node, metric: str, value: float) -> None:
        """A reading far from what the plan assumed asks for a new plan."""
        if node.kind == "zone" and metric == "flow":
            planned = self.planned_demand.get(node.id)
            if planned and abs(value - planned) / planned > self.demand_trigger:
                change = (value - planned) / planned
                self.request(f"{node.name} demand {'rose' if change > 0 else 'fell'} "
                             f"{abs(change):.0%} to {value:.0f} MLD")
        elif node.kind == "reservoir" and metric == "level":
            before = self.planned_levels.get(node.id)
            if before is not None and abs(value - before) >= LEVEL_TRIGGER_POINTS:
                self.request(f"reservoir {node.name} moved from {before:.0f}% to {value:.0f}%")

    # -- the background task -----------------------------------------------------------
    def periodic_wait_s(self) -> float:
        """Real seconds between periodic re-plans: `interval_s` of clock time, bounded below."""
        return max(self.clock.real_seconds(self.interval_s), min(self.interval_s, TIME_LAPSE_MIN_WAIT_S))

    def start(self) -> None:
        self._running = True
        self.request("start-up")
        self.spawn(self._run)

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    def _run(self) -> None:
        while self._running:
            woke = self._wake.wait(timeout=self.periodic_wait_s())
            if not self._running:
                break
            if woke:
                self.sleep(self.debounce_s)   # let a burst of changes settle
            self._wake.clear()
            try:
                self.run_once(self.take_reasons())
            except Exception:
                logger.exception("planning run failed")
