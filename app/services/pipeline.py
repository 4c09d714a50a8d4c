"""The one ingest path: validate → flag → store → `ReadingsAccepted`.

HTTP, MQTT and the simulator all call `ingest()` with decoded JSON items, so
there is one validation path and one set of side effects. A batch is
all-or-nothing: every bad item is reported by index and nothing is stored.
What follows a stored batch (history, analysis, the `/live` broadcast) are
the event's handlers (app/handlers.py); none of them can fail the ingest.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Protocol

from pydantic import TypeAdapter, ValidationError

from app.domain.clock import Clock, iso
from app.domain.events import Event, ReadingsAccepted
from app.domain.records import Reading
from app.errors import DomainError, InvalidInput
from app.models import MAX_FUTURE_S
from app.models import Reading as ReadingInput
from app.services.fusion import SENSOR
from app.services.metrics import Metrics
from app.services.store import DataStore

logger = logging.getLogger(__name__)

# Wire names of aliased fields, so error details name what the client sent.
_FIELD_NAMES = {"sensorId": "sensor_id", "latencyMs": "latency_ms"}

_READINGS = TypeAdapter(list[ReadingInput])
RECEIPT_SPACING_S = 1e-6
# What the registry knows of a sensor it has never heard of.
_NOTHING_KNOWN: dict = {}


class SensorDefaults(Protocol):
    """What the pipeline needs of the sensor registry."""

    def defaults(self, sensor_id: str) -> dict | None:
        """`{"metric", "unit", "node_id", "zone"}` for a registered sensor."""


class NoRegistry:
    def defaults(self, sensor_id: str) -> None:
        return None


def validation_details(error: ValidationError, batch: bool) -> list[dict]:
    details = []
    for problem in error.errors(include_url=False, include_input=False):
        loc = list(problem["loc"])
        # Items are always validated as a list; the index means something only in a batch.
        index = loc.pop(0) if loc and isinstance(loc[0], int) else None
        field = ".".join(_FIELD_NAMES.get(str(part), str(part)) for part in loc) or "reading"
        detail = {"field": field, "message": problem["msg"]}
        if batch and index is not None:
            detail["index"] = index
        details.append(detail)
    return details


class IngestPipeline:
    def __init__(self, store: DataStore, publish: Callable[[Event], None], metrics: Metrics,
                 registry: SensorDefaults | None = None,
                 annotators: list[Callable[[list[Reading]], None]] = (), *,
                 clock: Clock, max_clock_skew_s: float = MAX_FUTURE_S):
        self.store = store
        self.max_clock_skew_s = max_clock_skew_s   # readings further ahead are refused
        self.publish = publish
        self.metrics = metrics
        self.registry = registry or NoRegistry()
        self.clock = clock
        # Work that marks records before they are stored (data-quality flags).
        self.annotators = list(annotators)
        # Held from admission to the event's handlers: never across I/O
        # (history and broadcaster only buffer), so it costs microseconds.
        self._stateful = threading.Lock()

    def ingest(self, items: list[Any], source: str, batch: bool = True,
               count_rejected: bool = True, provenance: str = SENSOR) -> list[Reading]:
        """Validate and take in `items`; return the stored records.

        `source` names the channel for the metrics (http, mqtt, simulator ...);
        `provenance` is the readings' `source` field for fusion and history:
        `sensor`, `api:<id>`, `satellite:<id>` or `forecast`.
        `batch=False` means a single reading: error details carry no index.
        Raises InvalidInput or SensorLimitReached, having stored nothing.
        `count_rejected=False` is for callers that sort out and count the bad
        items themselves (MQTT takes many messages in one call).
        """
        try:
            now = self.clock()
            try:
                readings = _READINGS.validate_python(
                    items, context={"now": now, "max_skew_s": self.max_clock_skew_s})
            except ValidationError as error:
                raise InvalidInput(
                    "invalid readings in batch" if batch else "invalid reading",
                    validation_details(error, batch)) from None
            records = self._records(readings, now, provenance)
        except Exception:
            if count_rejected:
                self.metrics.rejected(source, len(items))
            raise
        # Validation runs in parallel; the stages with per-sensor state (cap,
        # quality windows, store, alert rules, broadcaster) take one batch at a
        # time, as they did under cooperative switching only by luck.
        with self._stateful:
            try:
                self.store.admit(r.sensor_id for r in records)
                for annotate in self.annotators:
                    annotate(records)
            except Exception:
                if count_rejected:
                    self.metrics.rejected(source, len(items))
                raise
            # History keeps every reading; analysis and viewers see the live values.
            live = self.store.put_many(records)
            self.publish(ReadingsAccepted(records, live, source))
        self.metrics.accepted(source, len(records))
        return records

    def ingest_messages(self, messages: list[list[Any]], source: str) -> dict[int, str]:
        """Take in many messages at once, each all-or-nothing, independent of the others.

        Returns why each refused message (by its index) was refused; the
        other messages are stored as one batch. The caller counts refusals
        (per message), so nothing is ingested twice to find out.
        """
        items = [item for message in messages for item in message]
        owners = [number for number, message in enumerate(messages) for _ in message]
        if not items:
            return {}
        refused: dict[int, str] = {}
        try:
            _READINGS.validate_python(items, context={"now": self.clock(),
                                                      "max_skew_s": self.max_clock_skew_s})
        except ValidationError as error:
            why: dict[int, list[str]] = {}
            for detail in validation_details(error, batch=True):
                if detail.get("index") is not None:
                    why.setdefault(owners[detail["index"]], []).append(
                        f"{detail['field']}: {detail['message']}")
            refused = {number: "invalid reading: " + "; ".join(parts) for number, parts in why.items()}
        kept = [m for number, m in enumerate(messages) if number not in refused and m]
        if kept:
            try:
                self.ingest([item for m in kept for item in m], source, count_rejected=False)
            except DomainError:   # e.g. the sensor limit: decide message by message
                numbers = [n for n, m in enumerate(messages) if n not in refused and m]
                for number in numbers:
                    try:
                        self.ingest(messages[number], source, count_rejected=False)
                    except DomainError as error:
                        refused[number] = error.message
        return refused

    def _records(self, readings: Iterable[ReadingInput], now: float, provenance: str) -> list[Reading]:
        defaults_of = self.registry.defaults
        records = []
        for index, reading in enumerate(readings):
            if reading.timestamp is None:
                # Readings stamped on receipt are spread 1 us apart, so several
                # readings of one sensor in a batch stay distinct points in history.
                ts = now + index * RECEIPT_SPACING_S
            else:
                ts = reading.timestamp.timestamp()
            known = defaults_of(reading.sensor_id) or _NOTHING_KNOWN
            records.append(reading.record(ts, iso(ts), known, provenance))
        return records
