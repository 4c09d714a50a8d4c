"""The device registry across instances: a device registered on one works on all.

`SharingRepository` sits in front of an instance's own registry storage (the
SQLite file) and sends every device saved or deleted there to the other
instances (through the shared-state stream), which save it into their own
storage and index it (`DeviceRegistry.adopt`). A restarted instance replays
the stream too, so it also learns of devices registered while it was away.
What devices last sent and their commands stay per instance.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from app.domain.records import Command
from app.services.device_repository import Device, RegistryRepository


class SharingRepository(RegistryRepository):
    def __init__(self, inner: RegistryRepository):
        self.inner = inner
        # share(kind, data); set once the cluster is built.
        self.share: Callable[[str, object], None] = lambda kind, data: None

    def devices(self) -> list[Device]:
        return self.inner.devices()

    def save_device(self, device: Device) -> None:
        self.inner.save_device(device)
        self.share("device", dataclasses.asdict(device))

    def save_states(self, devices: list[Device]) -> None:
        self.inner.save_states(devices)

    def delete_device(self, device_id: str) -> None:
        self.inner.delete_device(device_id)
        self.share("device_deleted", device_id)

    def save_command(self, command: Command) -> None:
        self.inner.save_command(command)

    def commands(self, device_id=None, state=None, limit=100) -> list[Command]:
        return self.inner.commands(device_id, state, limit)

    def open_commands(self) -> list[Command]:
        return self.inner.open_commands()

    def add_audit(self, entry: dict) -> None:
        self.inner.add_audit(entry)

    def audit(self, limit=100) -> list[dict]:
        return self.inner.audit(limit)

    def close(self) -> None:
        self.inner.close()


def device_adopters(repository: SharingRepository, registry) -> dict[str, Callable]:
    """The shared-state adopters for devices saved or deleted on another instance."""
    def saved(data: dict) -> None:
        device = Device(**data)
        repository.inner.save_device(device)
        registry.adopt(device, device.id)

    def deleted(device_id: str) -> None:
        repository.inner.delete_device(device_id)
        registry.adopt(None, device_id)

    return {"device": saved, "device_deleted": deleted}
