"""A python-socketio client on /live that records what it receives."""
from __future__ import annotations

import threading
import time

import socketio


class LiveClient:
    def __init__(self, url: str, namespace: str = "/live", auth: dict | None = None):
        self.events: list[tuple[str, object]] = []
        self.changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.namespace = namespace
        self.sio.on("*", self._record, namespace=namespace)
        self.sio.connect(url, namespaces=[namespace], transports=["websocket"], auth=auth,
                         wait_timeout=10)

    def _record(self, event, data=None):
        with self.changed:
            self.events.append((event, data))
            self.changed.notify_all()

    def of(self, event: str) -> list:
        with self.changed:
            return [data for name, data in self.events if name == event]

    def wait_for(self, predicate, timeout: float = 10.0):
        """Wait until predicate(events) is truthy; return its value or fail."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = predicate(self.events)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; got events {[e for e, _ in self.events]}")
                self.changed.wait(remaining)

    def readings(self, event: str = "sensor_update") -> list[dict]:
        return [r for frame in self.of(event) for r in frame["readings"]]

    def call(self, event: str, data, timeout: float = 5.0):
        return self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    def close(self) -> None:
        self.sio.disconnect()
