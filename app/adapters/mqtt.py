"""MQTT: device readings in, commands out, device presence. One class owns the paho client.

- A persistent session (clean session off) with QoS 1 subscriptions to
  `{prefix}/sensors/#` and `{prefix}/status/+`, so the broker queues readings
  for us while we are down. Subscriptions are (re)made in `on_connect`.
- paho's network loop runs as a task of the server (`spawn`, i.e.
  socketio.start_background_task) through paho's external-loop API
  (`loop_read`/`loop_write`/`loop_misc` around one `select`), so everything,
  the pipeline and its emits included, runs on the server's own loop. paho's
  own `loop_start` selects once per message, which under eventlet's monkey
  patch costs a hub switch each: measured here, 5.9k msg/s against 9.8k when
  we read up to READ_BURST packets per select. (From a real OS thread, emits
  fail outright: STACK-NOTES.)
- The `on_message` callback only appends to a deque; after each read burst
  the batch goes into the ingest pipeline in one call.
- A bad payload is counted, logged with its topic and dropped; the rest of
  its batch still lands (the pipeline sorts a batch out message by message
  in one call: `ingest_messages`).
- Commands are published retained at QoS 1 to `{prefix}/control/{target}`,
  so a device that reconnects gets its desired state.
- In a cluster (`share_group`), the device topics are shared subscriptions
  (`$share/<group>/...`): the broker gives each message to one instance. Each
  instance keeps its own persistent session, and acknowledges a message only
  after the pipeline took it (paho's manual ack), so a killed instance's
  unprocessed messages are delivered again when it comes back. Mosquitto
  2.0.11 keeps handing shared messages to a member that is away; they wait in
  its session, which is why a restarted instance reports ready only once its
  session is drained (`drained()`), and why a removed instance must come back
  once under its INSTANCE_ID (or its session be cleared) for nothing to stay behind.
- Other services add their own topics with `route(filter, handler)`
  (registered devices' `v1/devices/...` topics, shared in a cluster; the
  dynamic-security answers, never shared); a handler gets (topic, payload) on
  the server's loop. `guard` may refuse a `{prefix}/sensors/...` message whose
  readings the topic's publisher may not write (the registry's ownership rule).
"""
from __future__ import annotations

import json
import logging
import select
import time
from collections import deque
from typing import Callable
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt

from app import wire
from app.domain.events import DevicePresence, Event
from app.domain.records import ControlMessage
from app.services.commands import CommandPublisher
from app.services.metrics import Metrics

logger = logging.getLogger(__name__)

# Messages handed to the pipeline per call: one validation, one broadcast.
DRAIN_BATCH = 2000
# Most packets read per select; and how long a select waits (keepalive, stop checks).
READ_BURST = 1000
POLL_S = 0.1
# Messages held before new ones are refused (counted): bounds memory if the
# pipeline falls behind; the broker keeps QoS 1 messages it could not deliver.
MAX_PENDING = 100_000
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
# A session counts as drained once a select found nothing more to read, or
# (under steady load, when that never happens) this long after connecting.
DRAIN_MAX_S = 10.0
# CONNACK codes that retrying cannot fix.
_FATAL = {"Bad user name or password", "Not authorized", "Client identifier not valid",
          "Unsupported protocol version"}


class MqttLink(CommandPublisher):
    def __init__(self, url: str, prefix: str, client_id: str,
                 ingest_messages: Callable[[list[list], str], dict[int, str]],
                 metrics: Metrics, spawn: Callable, sleep: Callable[[float], None], max_payload: int,
                 publish: Callable[[Event], None] = lambda event: None,
                 share_group: str | None = None,
                 guard: Callable[[str, list], str | None] | None = None):
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT_URL must start with mqtt:// or mqtts://, not {parsed.scheme}://")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        self.prefix = prefix.rstrip("/")
        self.ingest_messages = ingest_messages
        self.metrics = metrics
        self.spawn = spawn
        self.sleep = sleep
        self.max_payload = max_payload
        self.publish_event = publish
        self.share_group = share_group
        self.guard = guard
        # Extra subscriptions: (topic filter, QoS, shared in a cluster, topic prefix, handler).
        self.routes: list[tuple[str, int, bool, str, Callable[[str, bytes], None]]] = []
        # Called from the network loop after each successful connect.
        self.on_connected: list[Callable[[], None]] = []
        # More fields of status(), from services riding on this link.
        self.status_parts: dict[str, Callable[[], object]] = {}
        self._connected_pending = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False, protocol=mqtt.MQTTv311,
                                  manual_ack=share_group is not None)
        if parsed.username:
            self.client.username_pw_set(unquote(parsed.username),
                                        unquote(parsed.password) if parsed.password else None)
        if parsed.scheme == "mqtts":
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._pending: deque = deque()
        self._running = False
        self.connected = False
        self.gave_up = False
        self.last_error: str | None = None
        self.devices: dict[str, dict] = {}
        self._connected_at = 0.0
        self._idle_since_connect = False

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.spawn(self._network_loop)

    def stop(self) -> None:
        self._running = False
        self._drain()   # what already arrived still goes in
        self.client.disconnect()

    def _network_loop(self) -> None:
        backoff = RECONNECT_MIN_S
        client = self.client
        while self._running and not self.gave_up:
            sock = client.socket()
            if sock is None:
                try:
                    client.reconnect()
                    backoff = RECONNECT_MIN_S
                except Exception as error:   # broker down or unreachable: back off
                    self.last_error = f"connect failed: {error}"
                    logger.warning("MQTT connect to %s:%s failed (%s); retrying in %ss",
                                   self.host, self.port, error, backoff)
                    self.sleep(backoff)
                    backoff = min(RECONNECT_MAX_S, backoff * 2)
                continue
            try:
                readable, _, _ = select.select([sock], [sock] if client.want_write() else [], [], POLL_S)
                if readable:
                    self._read_burst()
                elif self.connected and not self._pending:
                    self._idle_since_connect = True
                if client.want_write():
                    client.loop_write()
                client.loop_misc()
                self._drain()
                if self._connected_pending:
                    self._connected_pending = False
                    for listener in self.on_connected:
                        listener()
            except Exception:  # one bad turn must not end the link
                logger.exception("MQTT network loop error")
                self.sleep(POLL_S)

    def _read_burst(self) -> None:
        """Read packets while they keep coming, up to READ_BURST.

        paho's loop_read reads one packet per call whatever `max_packets`
        says (it derives the count from messages in flight), and reports
        "no data" as success; a call that delivers no message ends the burst.
        """
        pending = self._pending
        for _ in range(READ_BURST):
            before = len(pending)
            if self.client.loop_read() != mqtt.MQTT_ERR_SUCCESS or len(pending) == before:
                return

    # -- paho callbacks: tiny, never raise ------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            self.last_error = f"connect refused: {reason_code}"
            if str(reason_code) in _FATAL:
                logger.error("MQTT broker %s:%s refused us (%s); giving up: check MQTT_URL credentials",
                             self.host, self.port, reason_code)
                self.gave_up = True
                client.disconnect()
                return
            logger.warning("MQTT connect refused (%s); retrying", reason_code)
            return
        self.connected = True
        self._connected_at, self._idle_since_connect = time.monotonic(), False
        logger.info("MQTT connected to %s:%s (session present: %s)", self.host, self.port,
                    flags.session_present)
        share = f"$share/{self.share_group}/" if self.share_group else ""
        client.subscribe([(f"{share}{self.prefix}/sensors/#", 1), (f"{share}{self.prefix}/status/+", 1)]
                         + [((share if shared else "") + topic_filter, qos)
                            for topic_filter, qos, shared, _, _ in self.routes])
        self._connected_pending = True   # listeners run from the loop, not from this callback

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        self.connected = False
        if self._running and not self.gave_up:
            self.last_error = f"disconnected: {reason_code}"
            logger.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message):
        if len(self._pending) >= MAX_PENDING:
            self.metrics.rejected("mqtt")
            self._ack(message.mid, message.qos)
            return
        self._pending.append((message.topic, message.payload, message.retain, message.mid, message.qos))

    # -- into the pipeline ----------------------------------------------------------
    def _drain(self) -> None:
        pending = self._pending
        while pending:
            batch = [pending.popleft() for _ in range(min(len(pending), DRAIN_BATCH))]
            try:
                self._ingest_batch(batch)
            finally:   # taken in (or refused for good): the broker may forget them
                for message in batch:
                    self._ack(message[3], message[4])

    def _ack(self, mid: int, qos: int) -> None:
        if self.share_group is not None and qos > 0:
            self.client.ack(mid, qos)

    def drained(self) -> bool:
        """Connected, and what the broker held for our session has been taken in."""
        return self.connected and not self._pending and (
            self._idle_since_connect or time.monotonic() - self._connected_at > DRAIN_MAX_S)

    def _ingest_batch(self, batch: list) -> None:
        messages, numbers = [], []     # numbers[i]: position in `batch` of messages[i]
        sensor_prefix, status_prefix = f"{self.prefix}/sensors/", f"{self.prefix}/status/"
        for number, (topic, payload, retained, *_) in enumerate(batch):
            if topic.startswith(status_prefix):
                self._presence(topic[len(status_prefix):], payload, retained)
                continue
            handler = self._route_for(topic)
            if handler is not None:
                try:
                    handler(topic, payload)
                except Exception:   # one bad message never stops the loop
                    logger.exception("MQTT handler for %s failed", topic)
                continue
            decoded = self._decode(topic, payload, sensor_prefix)
            if decoded is not None:
                messages.append(decoded)
                numbers.append(number)
        if not messages:
            return
        refused = self.ingest_messages(messages, "mqtt")
        for index, why in sorted(refused.items()):
            self._reject(batch[numbers[index]][0], why)
        if len(refused) < len(messages):
            self.metrics.mqtt_message(len(messages) - len(refused))

    def _decode(self, topic: str, payload: bytes, sensor_prefix: str) -> list | None:
        if not topic.startswith(sensor_prefix) or topic == sensor_prefix:
            self._reject(topic, "not a sensor topic")
            return None
        if len(payload) > self.max_payload:
            self._reject(topic, f"payload of {len(payload)} bytes exceeds {self.max_payload}")
            return None
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            self._reject(topic, "payload is not JSON")
            return None
        items = data if isinstance(data, list) else [data]
        topic_sensor = topic[len(sensor_prefix):]
        for item in items:
            if isinstance(item, dict) and "sensor_id" not in item and "sensorId" not in item:
                item["sensor_id"] = topic_sensor
        if self.guard is not None:
            refused = self.guard(topic_sensor, items)
            if refused:
                self._reject(topic, refused)
                return None
        return items

    # -- routes of other services --------------------------------------------------
    def route(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1,
              shared: bool = True) -> None:
        """Subscribe `topic_filter` (again on every connect; a shared subscription in a
        cluster unless `shared` is False) and hand its messages to `handler`."""
        prefix = topic_filter.split("+", 1)[0].split("#", 1)[0]
        self.routes.append((topic_filter, qos, shared, prefix, handler))
        if self.connected:
            share = f"$share/{self.share_group}/" if self.share_group and shared else ""
            self.client.subscribe(share + topic_filter, qos)

    def _route_for(self, topic: str):
        for topic_filter, _, _, prefix, handler in self.routes:
            if topic.startswith(prefix) and mqtt.topic_matches_sub(topic_filter, topic):
                return handler
        return None

    def send(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool:
        """Publish now; False when not connected (the caller keeps it for later)."""
        if not self.connected:
            return False
        return self.client.publish(topic, payload, qos=qos, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    def _reject(self, topic: str, why: str) -> None:
        self.metrics.rejected("mqtt")
        self.last_error = f"{topic}: {why}"
        logger.warning("MQTT message on %s dropped: %s", topic, why[:300])

    def _presence(self, device_id: str, payload: bytes, retained: bool) -> None:
        state = payload.decode("utf-8", "replace").strip().lower()
        if state not in ("online", "offline") or not device_id:
            self._reject(f"{self.prefix}/status/{device_id}", "presence must be online or offline")
            return
        previous = self.devices.get(device_id, {}).get("state")
        self.devices[device_id] = {"state": state, "since": time.time()}
        if state != previous:
            # A retained `offline` seen at connect is old news, not a new failure.
            self.publish_event(DevicePresence(device_id, state, news=not retained))

    # -- the command port ----------------------------------------------------------
    def publish(self, target: str, message: ControlMessage) -> None:
        self.client.publish(f"{self.prefix}/control/{target}", json.dumps(wire.control_message(message)),
                            qos=1, retain=True)
        self.metrics.mqtt_command()

    def health(self) -> str:
        return "ok" if self.connected else "down"

    def status(self) -> dict:
        extra = {name: part() for name, part in self.status_parts.items()}
        return {
            "state": "connected" if self.connected else ("gave_up" if self.gave_up else "connecting"),
            "broker": f"{self.host}:{self.port}",
            "pending": len(self._pending),
            "last_error": self.last_error,
            "devices": {d: {"state": s["state"]} for d, s in sorted(self.devices.items())},
            **extra,
        }
