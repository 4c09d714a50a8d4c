"""Commands to registered devices, with delivery states (ThingsBoard's persistent RPC).

A control on a target that a device drives (its `actuators`) becomes a
command to that device, and only to it:

    queued -> sent -> delivered -> successful | failed
    queued -> expired            (still queued past its expires_at)
    sent | delivered -> timeout  (no outcome within timeout_s of being sent)

`sent`: handed to the broker (MQTT, `v1/devices/<id>/rpc/request/<command_id>`)
or fetched by the device's HTTP poll (a device that polls gets its commands
only that way, so its timeout starts when it has them). The device answers `{"status":
"delivered"}` and then `{"status": "successful"|"failed", "result": ...}`
(it may skip `delivered`). Every transition is timed in `history`, saved,
and reported to `on_change` (pushed on /live as `command_update`).
Open commands are read back at start-up; queued and sent ones are sent
again once a transport is there (the broker connection, or the device's
next poll), with a fresh timeout, and again when the device is back (its
presence says `online`, or it is heard from after being offline). A
transport may refuse a command for now (the device's last will said it is
offline): it then stays queued until the device is back or it expires.
"""
from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from typing import Callable, Protocol

from app.domain.clock import Clock, iso
from app.domain.records import Command, CommandParams, CommandStep, ControlMessage
from app.errors import Conflict, InvalidInput, NotFound
from app.services.commands import CommandPublisher
from app.services.device_registry import DeviceRegistry
from app.services.device_repository import OPEN_STATES, Device, RegistryRepository

logger = logging.getLogger(__name__)

STATES = ("queued", "sent", "delivered", "successful", "failed", "timeout", "expired")
FINAL_STATES = frozenset({"successful", "failed", "timeout", "expired"})
# Which states each answer of a device may move a command from.
ANSWER_FROM = {"delivered": {"queued", "sent"},
               "successful": set(OPEN_STATES),
               "failed": set(OPEN_STATES)}
# How often timeouts and expiries are checked (s): the resolution of timeout_s.
TICK_S = 0.25
# How often a waiting HTTP poll looks for new commands (s).
POLL_STEP_S = 0.1
# Longest HTTP long-poll (s): below common proxy idle timeouts (60 s).
MAX_POLL_S = 55.0
# Commands listed at most by GET /api/commands.
MAX_LISTED = 1000
# A device that polled over HTTP within this long (s) takes its commands from its
# polls, not the broker: `sent` then means fetched, and its timeout starts there.
HTTP_POLLER_S = MAX_POLL_S + 10.0


class CommandTransport(Protocol):
    def send_command(self, command: Command) -> bool:
        """Hand a command to its device's transport; False when it cannot now.
        The command is the book's own: read it, never keep or change it."""


def snapshot(command: Command) -> Command:
    """A copy for those outside the book: the command as it is now, whatever it becomes."""
    return copy.deepcopy(command)


class CommandBook:
    def __init__(self, repository: RegistryRepository, registry: DeviceRegistry,
                 on_change: Callable[[Command], None] = lambda command: None,
                 expiry_s: float = 86_400.0, *, clock: Clock,
                 spawn: Callable | None = None, sleep: Callable[[float], None] = time.sleep):
        self.repository = repository
        self.registry = registry
        self.on_change = on_change
        self.expiry_s = expiry_s
        self.clock = clock
        self.spawn, self.sleep = spawn, sleep
        self.transport: CommandTransport | None = None
        self._lock = threading.RLock()
        self._running = False
        self._polled: dict[str, float] = {}    # device id -> when it last polled over HTTP
        now = clock()
        self._open: dict[str, Command] = {}
        for command in repository.open_commands():
            # Back after a restart: sent again, so its timeout starts again.
            command.http_fetched = False
            if command.state == "sent":
                command.deadline_ts = now + command.timeout_s
            self._open[command.id] = command
        if self._open:
            logger.info("%d open command(s) read back; queued and sent ones go out again",
                        len(self._open))

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        if self.spawn:
            self.spawn(self._tick_loop)

    def stop(self) -> None:
        self._running = False

    def _tick_loop(self) -> None:
        while self._running:
            self.sleep(TICK_S)
            try:
                self.tick()
            except Exception:   # a background loop logs and carries on
                logger.exception("command timeout check failed")

    # -- creating and sending ------------------------------------------------------
    def create(self, device: Device, control: ControlMessage) -> Command:
        """The command a control becomes for `device`, sent if it can be."""
        now = self.clock()
        command = Command(
            "cmd-" + secrets.token_hex(6), device.id, control.id, control.action,
            CommandParams(control.target, control.value), "queued",
            self.registry.timeout_of(device), created_at=iso(now), created_ts=now,
            expires_at=iso(now + self.expiry_s), expires_ts=now + self.expiry_s, updated_at=iso(now),
            history=[CommandStep("queued", iso(now))])
        with self._lock:
            self._open[command.id] = command
            self._save(command)
        self.on_change(snapshot(command))
        self._send(command)
        return snapshot(command)

    def _send(self, command: Command) -> None:
        transport = self.transport
        polled = self._polled.get(command.device_id)
        if polled is not None and self.clock() - polled <= HTTP_POLLER_S:
            return   # an HTTP device: its poll takes it
        if transport is None or not transport.send_command(command):
            return
        self._mark_sent(command)

    def _mark_sent(self, command: Command) -> None:
        now = self.clock()
        with self._lock:
            command.attempts += 1
            command.last_sent_at = iso(now)
            command.deadline_ts = now + command.timeout_s
            if command.state == "queued":
                self._transition(command, "sent", now)
            else:
                self._save(command)

    def resend(self, device_id: str | None = None) -> int:
        """Send queued and sent commands again (the transport is back). Returns how many."""
        with self._lock:
            due = [c for c in self._open.values() if c.state in ("queued", "sent")
                   and (device_id is None or c.device_id == device_id)]
        for command in due:
            self._send(command)
        return len(due)

    def poll(self, device: Device, wait_s: float) -> list[Command]:
        """An HTTP device asks for its commands; waits up to wait_s for one. Oldest first."""
        self._polled[device.id] = self.clock()
        self.registry.heard(device)
        deadline = self.clock() + min(max(wait_s, 0.0), MAX_POLL_S)
        while True:
            with self._lock:
                due = [c for c in self._open.values() if c.device_id == device.id
                       and (c.state == "queued" or (c.state == "sent" and not c.http_fetched))]
                for command in due:
                    command.http_fetched = True
                    self._mark_sent(command)
                fetched = [snapshot(c) for c in sorted(due, key=lambda c: c.created_ts)]
            if due or self.clock() >= deadline or not self._running:
                self._polled[device.id] = self.clock()
                return fetched
            self.sleep(POLL_STEP_S)

    # -- answers from devices ----------------------------------------------------------
    def answer(self, device: Device, command_id: str, body) -> Command:
        if not isinstance(body, dict) or body.get("status") not in ANSWER_FROM:
            raise InvalidInput("invalid answer", [{"field": "status", "message":
                               "one of delivered, successful, failed"}])
        status = body["status"]
        try:
            return self._answer(device, command_id, status, body)
        finally:
            # After the transition, so an answered command is not sent again.
            self.registry.heard(device)

    def _answer(self, device: Device, command_id: str, status: str, body: dict) -> Command:
        with self._lock:
            command = self._open.get(command_id)
            if command is None or command.device_id != device.id:
                done = self.repository.commands(device_id=device.id, limit=MAX_LISTED)
                final = next((c for c in done if c.id == command_id), None)
                if final is None:
                    raise NotFound(f"no command '{command_id}' for this device")
                raise Conflict(f"command '{command_id}' is already {final.state}")
            if command.state == status:
                return snapshot(command)       # a repeated answer changes nothing
            if command.state not in ANSWER_FROM[status]:
                raise Conflict(f"command '{command_id}' is {command.state}; it cannot become {status}")
            if status != "delivered":
                command.result = body.get("result")
            self._transition(command, status, self.clock())
            return snapshot(command)

    # -- the clock --------------------------------------------------------------------------
    def tick(self) -> None:
        now = self.clock()
        with self._lock:
            for command in list(self._open.values()):
                if command.state == "queued" and now > command.expires_ts:
                    self._transition(command, "expired", now)
                elif (command.state in ("sent", "delivered") and command.deadline_ts
                      and now > command.deadline_ts):
                    self._transition(command, "timeout", now)

    # -- state changes ------------------------------------------------------------------------
    def _transition(self, command: Command, state: str, now: float) -> None:
        command.state = state
        command.updated_at = iso(now)
        command.history.append(CommandStep(state, iso(now)))
        if state in FINAL_STATES:
            self._open.pop(command.id, None)
        self._save(command)
        logger.info("command %s to %s: %s", command.id, command.device_id, state)
        try:
            self.on_change(snapshot(command))
        except Exception:   # a listener must not undo a transition
            logger.exception("command_update listener failed")

    def _save(self, command: Command) -> None:
        self.repository.save_command(command)

    # -- views ----------------------------------------------------------------------------------
    def listing(self, device_id: str | None, state: str | None, limit: int) -> list[Command]:
        """Newest first (the repository's copies)."""
        return self.repository.commands(device_id, state, min(limit, MAX_LISTED))

    def open_count(self) -> int:
        return len(self._open)


class DeviceCommandRouter(CommandPublisher):
    """The command port with a registry in front: a control on a target a device
    drives becomes that device's command; every other one goes out as before."""

    def __init__(self, inner: CommandPublisher, registry: DeviceRegistry, book: CommandBook):
        self.inner = inner
        self.registry = registry
        self.book = book

    def publish(self, target: str, message: ControlMessage) -> Command | None:
        device = self.registry.device_for_target(message.target or target)
        if device is None:
            return self.inner.publish(target, message)
        return self.book.create(device, message)

    def health(self) -> str:
        return self.inner.health()

    def __getattr__(self, name):
        # Everything else (status, desired state ...) is the inner publisher's.
        return getattr(self.inner, name)
