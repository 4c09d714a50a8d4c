"""Key-value telemetry, the field's convention, turned into our readings.

A device sends one of three shapes (ThingsBoard's):
- `{"key": value, ...}`, stamped on receipt;
- `{"ts": <ms since epoch>, "values": {"key": value, ...}}`;
- a list of either.

Numbers, and numbers sent as strings, are numeric: a key mapped in the
device's `telemetry` becomes a reading of its sensor (value × scale, with its
metric and unit) through the normal ingest path; an unmapped one is kept on
the device for an admin to map. Anything else (`"pump": "ON"`, booleans,
objects) is a device attribute. A body that names another device's sensor is
refused whole (403, audited), like any write of a sensor that is not the
device's own.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Callable

from app.domain.clock import Clock, iso
from app.errors import InvalidInput
from app.models import MAX_FUTURE_S
from app.services.device_registry import MAX_ATTRIBUTE_CHARS, DeviceRegistry
from app.services.device_repository import Device

# Entries in one body (a list shape) and keys in one entry: a device's
# telemetry is small; past these it is a bug or an attack.
MAX_ENTRIES = 1000
MAX_KEYS = 500
KEY_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
# Keys of a reading, not of telemetry: a body naming a sensor this way is
# checked against the device's own sensors.
SENSOR_KEYS = ("sensor_id", "sensorId")
# Oldest device timestamp taken (ms): 2000-01-01; older is a clock that never synced.
MIN_TS_MS = 946_684_800_000


@dataclass
class Entry:
    ts: float | None                 # seconds since epoch, None: receipt time
    values: dict
    index: int | None                # position in a list body
    wrapped: bool = False            # the {"ts", "values"} shape

    def where(self, key: str) -> str:
        return f"values.{key}" if self.wrapped else key


@dataclass
class Outcome:
    readings: list[dict] = field(default_factory=list)
    origins: list[tuple[int | None, str]] = field(default_factory=list)   # (entry index, key) per reading
    unmapped: dict[str, dict] = field(default_factory=dict)
    attributes: dict[str, object] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    named_sensors: set[str] = field(default_factory=set)


def _problem(index: int | None, field_name: str, message: str) -> dict:
    detail = {"field": field_name, "message": message}
    if index is not None:
        detail["index"] = index
    return detail


def _number(value) -> float | None:
    """A finite number, or a string holding one; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def parse(body, now: float, max_skew_s: float = MAX_FUTURE_S) -> list[Entry]:
    """The body's entries, or InvalidInput saying where each problem is."""
    listed = isinstance(body, list)
    items = body if listed else [body]
    if len(items) > MAX_ENTRIES:
        raise InvalidInput("too many telemetry entries",
                           [_problem(None, "body", f"at most {MAX_ENTRIES} entries per body")])
    entries, problems = [], []
    for position, item in enumerate(items):
        index = position if listed else None
        if not isinstance(item, dict):
            problems.append(_problem(index, "body" if not listed else "entry",
                                     "expected an object of key-value telemetry, "
                                     "{\"ts\": ms, \"values\": {...}}, or a list of them"))
            continue
        ts = None
        values = item
        if "values" in item and set(item) <= {"ts", "values"}:
            values = item["values"]
            if not isinstance(values, dict):
                problems.append(_problem(index, "values", "must be an object of key-value telemetry"))
                continue
            if "ts" in item:
                raw = item["ts"]
                millis = _number(raw)
                if millis is None:
                    problems.append(_problem(index, "ts", "must be milliseconds since the epoch"))
                    continue
                if millis < MIN_TS_MS:
                    problems.append(_problem(index, "ts", "before the year 2000: milliseconds since the epoch"))
                    continue
                if millis / 1000 > now + max_skew_s:
                    problems.append(_problem(index, "ts", f"more than {max_skew_s:g} s in the future "
                                                          "(MAX_CLOCK_SKEW_S)"))
                    continue
                ts = millis / 1000
        if len(values) > MAX_KEYS:
            problems.append(_problem(index, "values", f"at most {MAX_KEYS} keys per entry"))
            continue
        bad_keys = [k for k in values if not KEY_PATTERN.match(k)]
        if bad_keys:
            problems.append(_problem(index, "values", "keys are 1-64 printable characters"))
            continue
        entries.append(Entry(ts, values, index, wrapped=values is not item))
    if problems:
        raise InvalidInput("invalid telemetry", problems)
    return entries


def _attribute(value):
    """Attributes are kept small: long text and structures are cut to MAX_ATTRIBUTE_CHARS."""
    if isinstance(value, str):
        return value[:MAX_ATTRIBUTE_CHARS]
    if isinstance(value, (dict, list)):
        text = json.dumps(value)
        return value if len(text) <= MAX_ATTRIBUTE_CHARS else text[:MAX_ATTRIBUTE_CHARS]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def split(device: Device, entries: list[Entry], now: float) -> Outcome:
    """Sort each value into a reading, an unmapped number or an attribute."""
    outcome = Outcome()
    problems = []
    for entry in entries:
        for key, raw in entry.values.items():
            outcome.keys.add(key)
            if key in SENSOR_KEYS and isinstance(raw, str):
                outcome.named_sensors.add(raw)
            number = _number(raw)
            mapping = device.telemetry.get(key)
            if number is None:
                if mapping is not None:
                    if raw is not None:   # null: nothing to report this time
                        problems.append(_problem(entry.index, entry.where(key), "a mapped key needs a number"))
                    continue
                outcome.attributes[key] = _attribute(raw)
                continue
            if mapping is None:
                outcome.unmapped[key] = {"value": number, "ts": iso(entry.ts if entry.ts else now)}
                continue
            value = number * mapping["scale"]
            if not math.isfinite(value):
                problems.append(_problem(entry.index, entry.where(key),
                                         "the value times the key's scale is not finite"))
                continue
            reading = {"sensor_id": mapping["sensor_id"], "value": value}
            for name in ("metric", "unit"):
                if mapping.get(name):
                    reading[name] = mapping[name]
            if device.node_id:
                reading["node_id"] = device.node_id
            if entry.ts is not None:
                reading["timestamp"] = iso(entry.ts)
            outcome.readings.append(reading)
            outcome.origins.append((entry.index, entry.where(key)))
    if problems:
        raise InvalidInput("invalid telemetry", problems)
    return outcome


class TelemetryService:
    """Takes one device's telemetry body from HTTP or MQTT into the pipeline."""

    def __init__(self, registry: DeviceRegistry, ingest: Callable[..., list],
                 clock: Clock, max_skew_s: float = MAX_FUTURE_S):
        self.registry = registry
        self.ingest = ingest
        self.clock = clock
        self.max_skew_s = max_skew_s   # device times further ahead are refused

    def accept(self, device: Device, body, channel: str) -> dict:
        now = self.clock()
        outcome = split(device, parse(body, now, self.max_skew_s), now)
        # Keys or a sensor_id naming sensors: only this device's own may be named.
        named = {k for k in outcome.keys if self.registry.owner_of(k) not in (None, device.id)}
        named |= outcome.named_sensors
        if named:
            self.registry.check_writes(device, named, f"{channel} telemetry")
        if outcome.readings:
            try:
                self.ingest(outcome.readings, channel)
            except InvalidInput as error:   # name the telemetry key, not the reading
                raise InvalidInput("invalid telemetry", [
                    _problem(outcome.origins[d["index"]][0], outcome.origins[d["index"]][1],
                             d["message"]) if d.get("index") is not None else d
                    for d in error.details]) from None
        self.registry.observe(device, sorted(outcome.keys), outcome.unmapped, outcome.attributes)
        return {"accepted": len(outcome.readings), "unmapped": len(outcome.unmapped),
                "attributes": len(outcome.attributes)}
