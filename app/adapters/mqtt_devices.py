"""Registered devices' MQTT topics, in the field's convention adapted to a stock broker.

    v1/devices/<device_id>/telemetry                   device -> server, key-value telemetry
    v1/devices/<device_id>/rpc/request/<command_id>    server -> device, a command (QoS 1)
    v1/devices/<device_id>/rpc/response/<command_id>   device -> server, {"status": ...}

Who published is known from the topic: the broker's ACL (app/adapters/dynsec.py)
lets only device <device_id> publish under v1/devices/<device_id>/. The same
holds for `{prefix}/sensors/<sensor>` of a device's mapped sensor, which is
what `guard` relies on. Bad messages are counted, logged and dropped.
"""
from __future__ import annotations

import json
import logging

from app import wire
from app.domain.records import Command
from app.errors import DomainError, NotFound
from app.services.device_commands import CommandBook
from app.services.device_registry import DeviceRegistry
from app.services.telemetry import TelemetryService

logger = logging.getLogger(__name__)

TELEMETRY_FILTER = "v1/devices/+/telemetry"
RESPONSE_FILTER = "v1/devices/+/rpc/response/+"


def request_topic(device_id: str, command_id: str) -> str:
    return f"v1/devices/{device_id}/rpc/request/{command_id}"


class MqttDevices:
    def __init__(self, link, registry: DeviceRegistry, telemetry: TelemetryService, book: CommandBook,
                 max_payload: int):
        self.link = link
        self.registry = registry
        self.telemetry = telemetry
        self.book = book
        self.max_payload = max_payload
        link.route(TELEMETRY_FILTER, self._on_telemetry)
        # Not shared in a cluster: a command's state lives on the instance that created
        # it, so every instance hears each answer and the one holding the command takes it.
        link.route(RESPONSE_FILTER, self._on_response, shared=False)
        link.guard = self.guard
        link.on_connected.append(self._on_connected)
        book.transport = self

    # -- the command transport ------------------------------------------------------
    def send_command(self, command: Command) -> bool:
        if self.link.devices.get(command.device_id, {}).get("state") == "offline":
            return False   # its last will said it is gone: kept queued until it is back
        return self.link.send(request_topic(command.device_id, command.id),
                              json.dumps(wire.command_request(command)), qos=1)

    def on_presence(self, device_id: str, state: str) -> None:
        """`{prefix}/status/<id>` (a DevicePresence handler): a registered device back
        online gets its open commands."""
        if state == "online" and self.registry.find(device_id) is not None:
            sent = self.book.resend(device_id)
            if sent:
                logger.info("MQTT: device %s is back; %d open command(s) sent again", device_id, sent)

    def _on_connected(self) -> None:
        sent = self.book.resend()
        if sent:
            logger.info("MQTT: %d open command(s) sent again", sent)

    # -- messages from devices ---------------------------------------------------------
    def _decode(self, topic: str, payload: bytes):
        if len(payload) > self.max_payload:
            self._drop(topic, f"payload of {len(payload)} bytes exceeds {self.max_payload}")
            return None
        try:
            return json.loads(payload)
        except (ValueError, RecursionError):
            self._drop(topic, "payload is not JSON")
            return None

    def _device(self, topic: str):
        device = self.registry.find(topic.split("/")[2])
        if device is None:
            self._drop(topic, "no such device")
        return device

    def _on_telemetry(self, topic: str, payload: bytes) -> None:
        device = self._device(topic)
        body = self._decode(topic, payload) if device else None
        if device is None or body is None:
            return
        try:
            self.telemetry.accept(device, body, "mqtt")
            self.link.metrics.mqtt_message()
        except DomainError as error:
            self._drop(topic, f"{error.message} {error.details[:5]}")

    def _on_response(self, topic: str, payload: bytes) -> None:
        device = self._device(topic)
        body = self._decode(topic, payload) if device else None
        if device is None or body is None:
            return
        try:
            self.book.answer(device, topic.rsplit("/", 1)[1], body)
        except NotFound as error:
            if self.link.share_group is None:   # in a cluster another instance holds it
                self._drop(topic, error.message)
        except DomainError as error:
            self._drop(topic, error.message)

    def guard(self, topic_sensor: str, items: list) -> str | None:
        """A `{prefix}/sensors/<s>` message writes only sensors of the device owning <s>."""
        owner = self.registry.find(self.registry.owner_of(topic_sensor) or "")
        ids = [i.get("sensor_id", i.get("sensorId")) for i in items if isinstance(i, dict)]
        try:
            self.registry.check_writes(owner, [i for i in ids if isinstance(i, str)], "mqtt sensors topic")
        except DomainError as error:
            return error.message
        return None

    def _drop(self, topic: str, why: str) -> None:
        self.link.metrics.rejected("mqtt")
        logger.warning("MQTT message on %s dropped: %s", topic, why[:300])
