"""The command port: how a control reaches its device.

The MQTT adapter publishes each command retained to `{prefix}/control/{target}`.
Without a broker, the in-memory publisher keeps the desired state per target,
which is what a retained topic would hold.
"""
from __future__ import annotations

from abc import ABC, abstractmethod


class CommandPublisher(ABC):
    @abstractmethod
    def publish(self, target: str, command: dict) -> dict | None:
        """Send the desired state of `target`. Must not block on I/O.

        Returns what the control became when that is a tracked command to a
        registered device (`{"id", "device_id", "state"}`), else None.
        """

    def health(self) -> str:
        return "disabled"


class MemoryCommands(CommandPublisher):
    def __init__(self):
        self.desired: dict[str, dict] = {}

    def publish(self, target: str, command: dict) -> None:
        self.desired[target] = command
