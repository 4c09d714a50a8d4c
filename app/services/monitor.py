"""Periodic checks: silent sensors, and the network health broadcast.

A registered sensor that has reported before and then stays silent for
MISSED_REPORTS of its reporting interval raises a `sensor_offline`
alert, cleared by its next reading. The health view is recomputed each
round and published as HealthChanged when it changes.
"""
from __future__ import annotations

import logging
from typing import Callable

from app.domain.clock import Clock
from app.domain.events import Event, HealthChanged
from app.domain.records import Reading
from app.services.alerts import AlertBook
from app.services.network import MISSED_REPORTS, Network
from app.services.store import DataStore

logger = logging.getLogger(__name__)

# How often the monitor looks for silent sensors and changed health.
MONITOR_INTERVAL_S = 2.0


class Monitor:
    def __init__(self, network: Network, store: DataStore, alerts: AlertBook,
                 health: Callable[[], dict], publish: Callable[[Event], None],
                 spawn: Callable, sleep: Callable[[float], None],
                 clock: Clock):
        self.network = network
        self.store = store
        self.alerts = alerts
        self.health = health
        self.publish = publish
        self.spawn = spawn
        self.sleep = sleep
        self.clock = clock
        self._running = False
        self._last_health: dict | None = None

    def start(self) -> None:
        self._running = True
        self.spawn(self._run)

    def stop(self) -> None:
        self._running = False

    def observe(self, records: list[Reading]) -> None:
        """On ReadingsAccepted: a reading from a sensor marked offline clears its alert."""
        for record in records:
            if self.alerts.is_open(record.sensor_id, "sensor_offline"):
                self.alerts.clear(record.sensor_id, "sensor_offline")

    def _run(self) -> None:
        while self._running:
            try:
                self.check_offline()
                self.publish_health()
            except Exception:
                logger.exception("monitor round failed")
            self.sleep(MONITOR_INTERVAL_S)

    def check_offline(self) -> None:
        now = self.clock()
        for sensor in self.network.sensors.values():
            received = self.store.received_at(sensor.id)
            if received is None:
                continue
            silent = now - received
            if silent > MISSED_REPORTS * sensor.interval_s and \
                    not self.alerts.is_open(sensor.id, "sensor_offline"):
                self.alerts.raise_(
                    sensor.id, "sensor_offline", "warning",
                    f"Sensor {sensor.id} silent for {silent:.0f} s (reports every {sensor.interval_s:g} s)",
                    sensor_id=sensor.id, node_id=sensor.node, metric=sensor.metric,
                    value=round(silent, 1), threshold=MISSED_REPORTS * sensor.interval_s)

    def publish_health(self) -> None:
        health = self.health()
        if health != self._last_health:
            self._last_health = health
            self.publish(HealthChanged(health))
