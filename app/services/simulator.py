"""The simulator service: runs the network simulation as a background task.

Every tick it advances the model to the clock's time and feeds the readings
that are due through the same ingest pipeline as a device, so they are
validated, stored, analysed and broadcast exactly like real data. Under a
simulated clock (SIMULATOR_SPEED > 1) a tick covers SPEED simulated seconds,
and each sensor reports at most once a tick (the bootstrap raises the
sensors' reporting intervals to match, see Network.report_at_most_every).
"""
from __future__ import annotations

import logging
from typing import Callable

from app.domain.clock import Clock
from app.services.simulation import NetworkSimulation

logger = logging.getLogger(__name__)

# How often the simulator wakes (real seconds); sensors report on their own intervals.
TICK_S = 1.0


class Simulator:
    def __init__(self, simulation: NetworkSimulation, ingest: Callable[[list[dict]], object],
                 spawn: Callable, sleep: Callable[[float], None],
                 clock: Clock, autostart: bool = False):
        self.simulation = simulation
        self.ingest = ingest
        self.spawn = spawn
        self.sleep = sleep
        self.clock = clock
        self.autostart = autostart
        self.running = False
        self.sent = 0
        self.errors = 0
        self._generation = 0

    # -- lifecycle (runtime components) ---------------------------------------
    def start(self) -> None:
        if self.autostart:
            self.resume()

    def stop(self) -> None:
        self.running = False

    # -- control (the /api/simulation endpoints) ------------------------------
    def resume(self) -> bool:
        """Start producing readings; False if already running."""
        if self.running:
            return False
        self.running = True
        self._generation += 1
        self.spawn(self._run, self._generation)
        return True

    def state(self) -> dict:
        sim = self.simulation
        return {"running": self.running, "readings_sent": self.sent, "errors": self.errors,
                "seed": sim.seed, "speed": self.clock.rate, "sensors": len(sim.network.sensors),
                "city_factor": sim.city_factor,
                "zone_factors": {z: f for z, f in sim.zone_factor.items() if f != 1.0},
                "events": sim.active_events()}

    def _run(self, generation: int) -> None:
        # A stop followed by a quick start must not leave two loops running.
        while self.running and generation == self._generation:
            try:
                readings = self.simulation.step(self.clock())
                if readings:
                    self.ingest(readings)
                    self.sent += len(readings)
            except Exception:  # one bad tick must not end the simulation
                self.errors += 1
                logger.exception("simulator tick failed")
            self.sleep(TICK_S)
