"""The device registry: who a device is, what it may write, what it drives.

Each device has its own access token (shown once, kept as a SHA-256 digest),
a `telemetry` map from its keys to our sensors, and the `actuators` (links or
nodes) whose controls become its commands. A sensor belongs to at most one
device and then only that device may write it, on every path (key-value
telemetry, /api/ingest, /api/sensors, the MQTT topics); anything else gets a
403 and an audit entry, and nothing of its body is applied.

What devices last sent (last seen, keys, attributes) is kept in memory and
saved every STATE_SAVE_S, so telemetry costs no database write.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import replace
from typing import Callable, Iterable

from app.domain.clock import Clock, iso
from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from app.services.broker_accounts import BrokerAccounts, NoBrokerAccounts
from app.services.device_repository import Device, RegistryRepository

logger = logging.getLogger(__name__)

# How often what devices last sent is written to the database (s).
STATE_SAVE_S = 5.0
# Unmapped keys remembered per device: bounds what a chatty device can make us hold.
MAX_UNMAPPED_KEYS = 200
# Device attributes kept per device, and the longest text kept of one.
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_CHARS = 256


class SensorNotOwned(Forbidden):
    """A credential tried to write a sensor that is not its own."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


class DeviceRegistry:
    def __init__(self, repository: RegistryRepository, network=None,
                 accounts: BrokerAccounts | None = None,
                 default_timeout_s: float = 30.0, offline_after_s: float = 120.0,
                 on_change: Callable[[dict], None] = lambda view: None, *,
                 clock: Clock,
                 spawn: Callable | None = None, sleep: Callable[[float], None] = time.sleep):
        self.repository = repository
        self.network = network
        self.accounts = accounts or NoBrokerAccounts()
        self.default_timeout_s = default_timeout_s
        self.offline_after_s = offline_after_s
        self.on_change = on_change
        # Called with a device's id when it is heard from after being offline or never
        # seen: its open commands go out again (set by the composition root).
        self.on_back: Callable[[str], None] = lambda device_id: None
        self.clock = clock
        self.spawn, self.sleep = spawn, sleep
        self._lock = threading.RLock()
        self._by_id: dict[str, Device] = {}
        self._by_digest: dict[str, str] = {}
        self._sensor_owner: dict[str, str] = {}
        self._target_owner: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._running = False
        for device in repository.devices():
            self._index(device)

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        if self.spawn:
            self.spawn(self._save_loop)

    def stop(self) -> None:
        self._running = False
        self.save_states()
        self.repository.close()

    def _save_loop(self) -> None:
        while self._running:
            self.sleep(STATE_SAVE_S)
            try:
                self.save_states()
            except Exception:   # a background loop logs and carries on
                logger.exception("saving device states failed")

    def save_states(self) -> None:
        with self._lock:
            dirty = [self._by_id[i] for i in self._dirty if i in self._by_id]
            self._dirty.clear()
        if dirty:
            self.repository.save_states(dirty)

    # -- indexes --------------------------------------------------------------------
    def _index(self, device: Device) -> None:
        self._by_id[device.id] = device
        self._by_digest[device.token_digest] = device.id
        for mapping in device.telemetry.values():
            self._sensor_owner[mapping["sensor_id"]] = device.id
        for target in device.actuators:
            self._target_owner[target] = device.id

    def _unindex(self, device: Device) -> None:
        self._by_id.pop(device.id, None)
        self._by_digest.pop(device.token_digest, None)
        for owned in (self._sensor_owner, self._target_owner):
            for key in [k for k, v in owned.items() if v == device.id]:
                del owned[key]

    def adopt(self, device: Device | None, device_id: str) -> None:
        """Another instance of a cluster registered, changed or (None) deleted this device:
        index it here too, so its token works whichever instance it reaches."""
        with self._lock:
            old = self._by_id.get(device_id)
            if old is not None:
                self._unindex(old)
            if device is not None:
                self._index(device)

    # -- administration ------------------------------------------------------------
    def register(self, spec: dict) -> tuple[dict, str, str]:
        """Register a device from a validated spec; returns (view, token, mqtt state)."""
        token = new_token()
        now = self.clock()
        with self._lock:
            device_id = spec.get("id") or self._new_id()
            if device_id in self._by_id:
                raise Conflict(f"device '{device_id}' already exists")
            device = Device(id=device_id, name=spec["name"], kind=spec["kind"],
                            node_id=spec.get("node_id"), token_digest=token_digest(token),
                            telemetry=self._mappings(spec.get("telemetry") or {}),
                            actuators=list(dict.fromkeys(spec.get("actuators") or [])),
                            command_timeout_s=spec.get("command_timeout_s"),
                            created_at=now, token_rotated_at=now)
            self._check(device)
            self.repository.save_device(device)
            self._index(device)
        logger.info("device %s registered (%d mapped keys, %d actuators)", device.id,
                    len(device.telemetry), len(device.actuators))
        state = self._broker("provision", device, token)
        return self.view(device), token, state

    def update(self, device_id: str, patch: dict) -> tuple[dict, str]:
        with self._lock:
            current = self._get(device_id)
            changes = dict(patch)
            if "telemetry" in changes:
                changes["telemetry"] = self._mappings(changes["telemetry"] or {})
            if "actuators" in changes:
                changes["actuators"] = list(dict.fromkeys(changes["actuators"] or []))
            updated = replace(current, **changes)
            self._check(updated)
            self.repository.save_device(updated)
            self._unindex(current)
            self._index(updated)
        topics_changed = (updated.telemetry != current.telemetry or updated.actuators != current.actuators)
        state = self._broker("update_acl", updated) if topics_changed else "unchanged"
        return self.view(updated), state

    def rotate(self, device_id: str) -> tuple[dict, str, str]:
        """A new token; the old one stops at once (HTTP now, MQTT at the broker's answer)."""
        token = new_token()
        with self._lock:
            current = self._get(device_id)
            updated = replace(current, token_digest=token_digest(token), token_rotated_at=self.clock())
            self.repository.save_device(updated)
            self._unindex(current)
            self._index(updated)
        logger.info("device %s: token rotated", device_id)
        return self.view(updated), token, self._broker("provision", updated, token)

    def delete(self, device_id: str) -> str:
        with self._lock:
            device = self._get(device_id)
            self.repository.delete_device(device_id)
            self._unindex(device)
            self._dirty.discard(device_id)
        logger.info("device %s deleted", device_id)
        return self._broker("remove", device_id)

    def _broker(self, operation: str, *args) -> str:
        try:
            return getattr(self.accounts, operation)(*args)
        except Exception as error:   # the registry stays the truth; the broker catches up
            logger.warning("broker %s for a device failed: %s", operation, error)
            return "pending"

    def _new_id(self) -> str:
        while True:
            candidate = "dev-" + secrets.token_hex(4)
            if candidate not in self._by_id:
                return candidate

    @staticmethod
    def _mappings(telemetry: dict) -> dict[str, dict]:
        return {key: {"sensor_id": m["sensor_id"], "metric": m.get("metric"), "unit": m.get("unit"),
                      "scale": float(m.get("scale", 1.0))}
                for key, m in telemetry.items()}

    def _check(self, device: Device) -> None:
        """Sensors and actuators belong to one device; nodes and targets exist."""
        problems = []
        net = self.network
        if net is not None and device.node_id and device.node_id not in net.nodes:
            problems.append({"field": "node_id", "message": f"no node '{device.node_id}'"})
        for target in device.actuators:
            if net is not None and target not in net.links and target not in net.nodes:
                problems.append({"field": "actuators", "message": f"no link or node '{target}'"})
        if problems:
            raise InvalidInput("invalid device", problems)
        for key, mapping in device.telemetry.items():
            owner = self._sensor_owner.get(mapping["sensor_id"])
            if owner not in (None, device.id):
                raise Conflict(f"sensor '{mapping['sensor_id']}' (key '{key}') belongs to device '{owner}'")
        for target in device.actuators:
            owner = self._target_owner.get(target)
            if owner not in (None, device.id):
                raise Conflict(f"actuator '{target}' is driven by device '{owner}'")

    # -- lookups ---------------------------------------------------------------------
    def _get(self, device_id: str) -> Device:
        device = self._by_id.get(device_id)
        if device is None:
            raise NotFound(f"no device '{device_id}'")
        return device

    def get(self, device_id: str) -> Device:
        with self._lock:
            return self._get(device_id)

    def find(self, device_id: str) -> Device | None:
        return self._by_id.get(device_id)

    def authenticate(self, token: str | None) -> Device | None:
        """The device whose token this is, or None (unknown, rotated or deleted)."""
        if not token:
            return None
        device_id = self._by_digest.get(token_digest(token))
        return self._by_id.get(device_id) if device_id else None

    def owner_of(self, sensor_id: str) -> str | None:
        return self._sensor_owner.get(sensor_id)

    def device_for_target(self, target: str | None) -> Device | None:
        device_id = self._target_owner.get(target) if target else None
        return self._by_id.get(device_id) if device_id else None

    def timeout_of(self, device: Device) -> float:
        return device.command_timeout_s or self.default_timeout_s

    def __len__(self) -> int:
        return len(self._by_id)

    # -- who may write what ------------------------------------------------------------
    def check_writes(self, device: Device | None, sensor_ids: Iterable[str], channel: str) -> None:
        """Refuse (403, audited) a write of sensors that are not the writer's own.

        A device may write only its mapped sensors; a writer that is no
        registered device (a legacy key, open ingest) may write only sensors
        no device owns.
        """
        writer = device.id if device else None
        foreign = []
        for sensor_id in sensor_ids:
            if device is not None:
                if self._sensor_owner.get(sensor_id) != writer:
                    foreign.append(sensor_id)
            elif sensor_id in self._sensor_owner:
                foreign.append(sensor_id)
        if foreign:
            foreign = sorted(set(foreign))
            self.record_audit("write_refused", writer, channel, {"sensors": foreign[:20]})
            whose = "this device's" if device else "a registered device's and need its token"
            raise SensorNotOwned(
                f"{len(foreign)} sensor(s) are not {whose}; nothing of this body was applied",
                [{"field": "sensor_id", "message": f"'{s}' is not writable with this credential"}
                 for s in foreign[:20]])

    def record_audit(self, kind: str, device_id: str | None, channel: str, detail: dict) -> None:
        now = self.clock()
        entry = {"at": iso(now), "at_ts": now, "kind": kind, "device_id": device_id,
                 "channel": channel, **detail}
        logger.warning("device audit: %s by %s on %s: %s", kind, device_id or "an unregistered writer",
                       channel, detail)
        try:
            self.repository.add_audit(entry)
        except Exception:   # the refusal stands even if the audit store fails
            logger.exception("writing a device audit entry failed")

    def audit(self, limit: int) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "at_ts"} for e in self.repository.audit(limit)]

    # -- what devices send ----------------------------------------------------------------
    def observe(self, device: Device, keys: list[str], unmapped: dict[str, dict],
                attributes: dict[str, object]) -> None:
        """Note a telemetry message: its keys, unmapped numeric values and attributes."""
        now = self.clock()
        with self._lock:
            current = self._by_id.get(device.id)
            if current is None:
                return
            was_online = self._online(current, now)
            changed = not was_online or (set(attributes) - set(current.attributes)) or (
                set(unmapped) - set(current.unmapped)) or any(
                current.attributes.get(k) != v for k, v in attributes.items())
            current.last_seen = now
            current.last_keys = sorted(keys)[:MAX_UNMAPPED_KEYS]
            for key, value in unmapped.items():
                if key in current.unmapped or len(current.unmapped) < MAX_UNMAPPED_KEYS:
                    current.unmapped[key] = value
            for key, value in attributes.items():
                if key in current.attributes or len(current.attributes) < MAX_ATTRIBUTES:
                    current.attributes[key] = value
            self._dirty.add(device.id)
        if changed:
            self.on_change(self.view(current))
        if not was_online:
            self._back(device.id)

    def heard(self, device: Device) -> None:
        """The device spoke without telemetry (polled for commands, answered one): it is online."""
        now = self.clock()
        with self._lock:
            current = self._by_id.get(device.id)
            if current is None:
                return
            was_online = self._online(current, now)
            current.last_seen = now
            self._dirty.add(device.id)
        if not was_online:
            self.on_change(self.view(current))
            self._back(device.id)

    def _back(self, device_id: str) -> None:
        try:
            self.on_back(device_id)
        except Exception:   # a listener must not lose the device's telemetry
            logger.exception("re-sending commands to %s failed", device_id)

    def _online(self, device: Device, now: float) -> bool:
        return device.last_seen is not None and now - device.last_seen <= self.offline_after_s

    # -- views ------------------------------------------------------------------------------
    def view(self, device: Device) -> dict:
        now = self.clock()
        mapped_now = [k for k in device.unmapped if k not in device.telemetry]
        return {
            "id": device.id, "name": device.name, "kind": device.kind, "node_id": device.node_id,
            "telemetry": device.telemetry, "actuators": device.actuators,
            "command_timeout_s": self.timeout_of(device),
            "status": ("never_seen" if device.last_seen is None
                       else "online" if self._online(device, now) else "offline"),
            "last_seen": iso(device.last_seen) if device.last_seen else None,
            "last_keys": device.last_keys,
            "unmapped_keys": sorted(mapped_now),
            "unmapped": {k: device.unmapped[k] for k in sorted(mapped_now)},
            "attributes": device.attributes,
            "created_at": iso(device.created_at), "token_rotated_at": iso(device.token_rotated_at),
            "mqtt": {"username": device.id, "telemetry_topic": f"v1/devices/{device.id}/telemetry",
                     "rpc_request_topic": f"v1/devices/{device.id}/rpc/request/+",
                     "rpc_response_topic": f"v1/devices/{device.id}/rpc/response/<command_id>"},
        }

    def listing(self) -> list[dict]:
        with self._lock:
            devices = sorted(self._by_id.values(), key=lambda d: d.id)
        return [self.view(d) for d in devices]
