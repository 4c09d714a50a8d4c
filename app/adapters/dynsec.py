"""Devices' MQTT logins in Mosquitto 2's dynamic-security plugin, driven over `$CONTROL`.

Each registered device gets a dynsec client (username = device id, password
= its token) and a role of its own whose ACL lets it publish only its own
topics and subscribe only to its own commands:

    publish    v1/devices/<id>/telemetry, v1/devices/<id>/rpc/response/#,
               {prefix}/sensors/<each mapped sensor>, {prefix}/status/<id>
    subscribe  v1/devices/<id>/rpc/request/#, {prefix}/control/<each actuator>

A new token (rotation) is set with `setClientPassword`, which makes the
broker disconnect any session opened with the old one; `deleteClient` does
the same for a deleted device. The server's own MQTT user (MQTT_URL) must be
a dynsec admin (`mosquitto_ctrl dynsec init` makes one); at each connect it
gives itself the `bhs-server` role to publish commands.

The broker keeps its own salted hashes of the passwords; we keep only our
digests, so a token can be handed to the broker only when it is issued. If
the broker is unreachable then, the change waits in memory (never on disk)
and is made at the next connect; a server restart in between means rotating
that device's token again (the registry answers `"mqtt": "pending"`).
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Callable

from app.services.broker_accounts import BrokerAccounts

logger = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
# How long a registry call waits for the broker's answer (s).
ANSWER_WAIT_S = 5.0
ANSWER_POLL_S = 0.02
SERVER_ROLE = "bhs-server"
# Marks the dynsec clients this server manages.
DEVICE_TEXTNAME = "bhs device"
# Errors that mean "already as wanted" in an idempotent sequence.
_HARMLESS = ("not found", "already exists")


def device_role(device_id: str) -> str:
    return f"bhs-device-{device_id}"


def device_acls(device, prefix: str) -> list[dict]:
    own = f"v1/devices/{device.id}"
    send = [f"{own}/telemetry", f"{own}/rpc/response/#", f"{prefix}/status/{device.id}"]
    send += [f"{prefix}/sensors/{m['sensor_id']}" for m in device.telemetry.values()]
    subscribe = [f"{own}/rpc/request/#"] + [f"{prefix}/control/{t}" for t in device.actuators]
    return ([{"acltype": "publishClientSend", "topic": t, "allow": True} for t in dict.fromkeys(send)]
            + [{"acltype": "subscribePattern", "topic": t, "allow": True} for t in subscribe])


class BrokerRefused(Exception):
    pass


class DynamicSecurity(BrokerAccounts):
    def __init__(self, link, server_username: str | None, spawn: Callable, sleep: Callable[[float], None],
                 prefix: str = "water", clock: Callable[[], float] = time.monotonic):
        self.link = link
        self.server_username = server_username
        self.spawn, self.sleep, self.clock = spawn, sleep, clock
        self.prefix = prefix
        self._answers: dict[str, dict] = {}
        self._waiting: dict[str, tuple] = {}     # device id -> the change still to make
        self._lock = threading.Lock()
        # True once the server's own role is set after a connect.
        self.ready = False
        link.route(RESPONSE_TOPIC, self._on_response, shared=False)   # every instance its own answers
        link.on_connected.append(lambda: self.spawn(self._after_connect))
        link.status_parts["dynsec"] = lambda: {"ready": self.ready, "waiting": len(self._waiting)}

    # -- the port -------------------------------------------------------------------
    def provision(self, device, token: str) -> str:
        return self._apply(device.id, ("provision", device, token), self.provision_commands(device, token))

    def update_acl(self, device) -> str:
        role = device_role(device.id)
        return self._apply(device.id, ("update_acl", device), [
            {"command": "deleteRole", "rolename": role},
            {"command": "createRole", "rolename": role, "acls": device_acls(device, self.prefix)},
            {"command": "addClientRole", "username": device.id, "rolename": role},
        ])

    def remove(self, device_id: str) -> str:
        return self._apply(device_id, ("remove", device_id), [
            {"command": "deleteClient", "username": device_id},
            {"command": "deleteRole", "rolename": device_role(device_id)},
        ])

    def _apply(self, device_id: str, change: tuple, commands: list[dict]) -> str:
        with self._lock:
            earlier = self._waiting.pop(device_id, None)
        if earlier and earlier[0] == "provision" and change[0] == "update_acl":
            change = ("provision", change[1], earlier[2])   # still needs its token
            return self._apply(device_id, change, self.provision_commands(change[1], change[2]))
        try:
            self.call(commands)
            return "provisioned"
        except (BrokerRefused, TimeoutError, ConnectionError) as error:
            logger.warning("dynamic security: %s for %s waits for the broker (%s)", change[0],
                           device_id, error)
            with self._lock:
                self._waiting[device_id] = change
            return "pending"

    def provision_commands(self, device, token: str) -> list[dict]:
        role = device_role(device.id)
        return [{"command": "deleteClient", "username": device.id},
                {"command": "deleteRole", "rolename": role},
                {"command": "createRole", "rolename": role, "acls": device_acls(device, self.prefix)},
                {"command": "createClient", "username": device.id, "password": token,
                 "textname": DEVICE_TEXTNAME, "roles": [{"rolename": role}]}]

    # -- talking to the plugin ----------------------------------------------------------
    def call(self, commands: list[dict]) -> list[dict]:
        """Send commands in one message and wait for their answers; BrokerRefused on an error."""
        tag = secrets.token_hex(6)
        for number, command in enumerate(commands):
            command["correlationData"] = f"{tag}-{number}"
        if not self.link.send(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1):
            raise ConnectionError("not connected to the broker")
        deadline = self.clock() + ANSWER_WAIT_S
        keys = [c["correlationData"] for c in commands]
        while not all(k in self._answers for k in keys):
            if self.clock() > deadline:
                for key in keys:
                    self._answers.pop(key, None)
                raise TimeoutError("no answer from the dynamic-security plugin")
            self.sleep(ANSWER_POLL_S)
        answers = [self._answers.pop(k) for k in keys]
        for command, answer in zip(commands, answers):
            error = answer.get("error")
            if error and not any(h in error.lower() for h in _HARMLESS):
                raise BrokerRefused(f"{command['command']}: {error}")
        return answers

    def _on_response(self, topic: str, payload: bytes) -> None:
        try:
            responses = json.loads(payload).get("responses", [])
        except (ValueError, AttributeError):
            logger.warning("dynamic security: unreadable answer %r", payload[:200])
            return
        for response in responses:
            key = response.get("correlationData")
            if key:
                self._answers[key] = response

    def _ensure_server_role(self) -> None:
        """Changing a client's roles makes the plugin disconnect it, so only when missing."""
        answer = self.call([{"command": "getClient", "username": self.server_username}])[0]
        roles = {r.get("rolename") for r in answer.get("data", {}).get("client", {}).get("roles", [])}
        if SERVER_ROLE in roles:
            return
        logger.info("dynamic security: giving %s the %s role (the broker reconnects us once)",
                    self.server_username, SERVER_ROLE)
        self.call([
            {"command": "createRole", "rolename": SERVER_ROLE, "acls": [
                {"acltype": "publishClientSend", "topic": "v1/devices/+/rpc/request/#", "allow": True},
                {"acltype": "publishClientSend", "topic": f"{self.prefix}/control/#", "allow": True}]},
            {"command": "addClientRole", "username": self.server_username, "rolename": SERVER_ROLE},
        ])

    def _after_connect(self) -> None:
        """Give ourselves the server role, then make the changes that waited."""
        self.ready = False
        if self.server_username:
            try:
                self._ensure_server_role()
            except Exception as error:
                logger.error("dynamic security: could not set up the server's role (%s); "
                             "is the MQTT_URL user a dynsec admin?", error)
                return
        self.ready = True
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for device_id, change in waiting.items():
            if change[0] == "provision":
                self._apply(device_id, change, self.provision_commands(change[1], change[2]))
            elif change[0] == "update_acl":
                self.update_acl(change[1])
            else:
                self.remove(device_id)
        if waiting:
            logger.info("dynamic security: %d waiting change(s) made", len(waiting))
