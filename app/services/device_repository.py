"""The registry's storage port: devices, their commands and the audit trail.

One interface, so the embedded SQLite adapter (app/adapters/sqlite_registry.py)
can later give way to Postgres. The in-memory one is for unit tests.
"""
from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from app.domain.records import Command

# Command states that may still change.
OPEN_STATES = ("queued", "sent", "delivered")


@dataclass
class Device:
    """A registered device. `token_digest` is the SHA-256 of its token, never the token."""

    id: str
    name: str
    kind: str
    node_id: str | None
    token_digest: str
    # device key -> {"sensor_id", "metric", "unit", "scale"}
    telemetry: dict[str, dict] = field(default_factory=dict)
    # links or nodes this device drives: controls on them become its commands
    actuators: list[str] = field(default_factory=list)
    command_timeout_s: float | None = None
    created_at: float = 0.0
    token_rotated_at: float = 0.0
    # What it last sent (kept in memory, saved now and then).
    last_seen: float | None = None
    last_keys: list[str] = field(default_factory=list)
    unmapped: dict[str, dict] = field(default_factory=dict)   # key -> {"value", "ts"}
    attributes: dict[str, object] = field(default_factory=dict)


class RegistryRepository(ABC):
    # -- devices ----------------------------------------------------------------
    @abstractmethod
    def devices(self) -> list[Device]:
        """Every registered device (read once at start-up)."""

    @abstractmethod
    def save_device(self, device: Device) -> None:
        """Insert or replace a device, configuration and state."""

    @abstractmethod
    def save_states(self, devices: list[Device]) -> None:
        """Save what devices last sent (last seen, keys, attributes)."""

    @abstractmethod
    def delete_device(self, device_id: str) -> None:
        ...

    # -- commands ---------------------------------------------------------------
    @abstractmethod
    def save_command(self, command: Command) -> None:
        """Insert or replace a command (keyed by its `id`); the caller may go on changing its own."""

    @abstractmethod
    def commands(self, device_id: str | None = None, state: str | None = None,
                 limit: int = 100) -> list[Command]:
        """Newest first."""

    @abstractmethod
    def open_commands(self) -> list[Command]:
        """Commands whose state may still change, oldest first."""

    # -- audit --------------------------------------------------------------------
    @abstractmethod
    def add_audit(self, entry: dict) -> None:
        ...

    @abstractmethod
    def audit(self, limit: int = 100) -> list[dict]:
        """Newest first."""

    def close(self) -> None:
        pass


class MemoryRegistry(RegistryRepository):
    """Keeps everything in dictionaries; for unit tests."""

    def __init__(self):
        self._devices: dict[str, Device] = {}
        self._commands: dict[str, Command] = {}
        self._audit: list[dict] = []
        self._lock = threading.Lock()

    def devices(self) -> list[Device]:
        with self._lock:
            return [copy.deepcopy(d) for d in self._devices.values()]

    def save_device(self, device: Device) -> None:
        with self._lock:
            self._devices[device.id] = copy.deepcopy(device)

    def save_states(self, devices: list[Device]) -> None:
        for device in devices:
            self.save_device(device)

    def delete_device(self, device_id: str) -> None:
        with self._lock:
            self._devices.pop(device_id, None)

    def save_command(self, command: Command) -> None:
        with self._lock:
            self._commands[command.id] = copy.deepcopy(command)

    def commands(self, device_id=None, state=None, limit=100) -> list[Command]:
        with self._lock:
            found = [copy.deepcopy(c) for c in self._commands.values()
                     if (device_id is None or c.device_id == device_id)
                     and (state is None or c.state == state)]
        return sorted(found, key=lambda c: c.created_ts, reverse=True)[:limit]

    def open_commands(self) -> list[Command]:
        with self._lock:
            found = [copy.deepcopy(c) for c in self._commands.values() if c.state in OPEN_STATES]
        return sorted(found, key=lambda c: c.created_ts)

    def add_audit(self, entry: dict) -> None:
        with self._lock:
            self._audit.append(dict(entry))

    def audit(self, limit=100) -> list[dict]:
        with self._lock:
            return list(reversed(self._audit))[:limit]
