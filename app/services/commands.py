"""The command port: how a control reaches its device.

The MQTT adapter publishes each command retained to `{prefix}/control/{target}`.
Without a broker, the in-memory publisher keeps the desired state per target,
which is what a retained topic would hold.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from app.domain.records import Command, ControlMessage


class CommandPublisher(ABC):
    @abstractmethod
    def publish(self, target: str, message: ControlMessage) -> Command | None:
        """Send the desired state of `target` (a link or node id, or `mode`). Must not block on I/O.

        Returns the command the control became when a registered device drives
        its target (tracked until the device answers), else None.
        """

    def health(self) -> str:
        return "disabled"


class MemoryCommands(CommandPublisher):
    def __init__(self):
        self.desired: dict[str, ControlMessage] = {}

    def publish(self, target: str, message: ControlMessage) -> None:
        self.desired[target] = message
