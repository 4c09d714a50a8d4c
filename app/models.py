"""Wire types (pydantic v2): the reading, controls and the error envelope.

Field names are snake_case on the wire; ingest also accepts the camelCase
aliases that existing devices send (`sensorId`, `latencyMs`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.domain import records
from app.services.alerts import SHELVE_MAX_S, SHELVE_MIN_S
from app.services.local_time import SECONDS_PER_DAY

# The characters of a sensor id (and of the ids the API takes beside it), and the
# longest id or short text accepted (contract: 1-64 of A-Za-z0-9_.:-).
ID_CHARS = "A-Za-z0-9_.:-"
MAX_ID_LENGTH = 64
SENSOR_ID_PATTERN = rf"^[{ID_CHARS}]{{1,{MAX_ID_LENGTH}}}$"
SLUG_PATTERN = r"^[a-z0-9_]{1,32}$"
# Metrics the analysis understands; any other slug is stored as given.
KNOWN_METRICS = frozenset({
    "flow", "pressure", "level", "ph", "turbidity", "do", "bod", "fc",
    "chlorine", "conductivity", "tds", "temperature", "power", "status",
})

# Readings stamped further ahead than this are refused (contract: 5 minutes;
# MAX_CLOCK_SKEW_S sets it, passed in the validation context).
MAX_FUTURE_S = 300.0
# What the simulator can stage (POST /api/simulation/trigger).
EventKind = Literal["leak", "contamination", "demand_surge", "pump_failure", "source_outage"]

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# Free text that ends up in tags and logs: no control characters (line protocol
# has no escape for a newline; logs would be forgeable).
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# Text stored as an InfluxDB tag also may not end in a backslash: line protocol
# cannot carry one (influxd answers "invalid tag format" however it is escaped).
TAG_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\\]$"
ShortText = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=TAG_TEXT_PATTERN)]


class Reading(BaseModel):
    """One measurement from a device, exactly as the contract describes it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    sensor_id: str = Field(alias="sensorId", pattern=SENSOR_ID_PATTERN)
    value: FiniteNumber
    metric: str | None = Field(default=None, pattern=SLUG_PATTERN)
    unit: str | None = Field(default=None, max_length=32, pattern=PRINTABLE_PATTERN)
    node_id: ShortText | None = None
    zone: ShortText | None = None
    timestamp: datetime | None = None
    latency_ms: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)] | None = Field(
        default=None, alias="latencyMs")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _iso_text_only(cls, value):
        # The contract says ISO 8601; numbers and booleans would be read as epochs.
        if value is not None and not isinstance(value, (str, datetime)):
            raise ValueError("timestamp must be an ISO 8601 string")
        return value

    @field_validator("timestamp")
    @classmethod
    def _as_utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        # Naive timestamps are UTC, per the contract.
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        # The ingest path passes its clock as context; far-future times are refused.
        context = info.context or {}
        now, skew = context.get("now"), context.get("max_skew_s", MAX_FUTURE_S)
        if now is not None and value.timestamp() > now + skew:
            raise ValueError(f"timestamp is {value.timestamp() - now:.0f} s in the future; at most "
                             f"{skew:.0f} s ahead of the server's clock is accepted (MAX_CLOCK_SKEW_S)")
        return value

    def record(self, ts: float, timestamp: str, known: dict, source: str) -> records.Reading:
        """The core's record of this reading (app/domain/records.py).

        `ts` and `timestamp`: when it was measured (the receipt time when the
        device did not say), in epoch seconds and as ISO text; `known`: the
        registry's metric, unit, node and zone for what the device left out;
        `source`: its provenance.
        """
        # Positional, in the record's field order: the hot path (records.Reading says why).
        return records.Reading(
            self.sensor_id, self.value, self.metric or known.get("metric") or "value", timestamp, ts,
            self.unit or known.get("unit"), self.node_id or known.get("node_id"),
            self.zone or known.get("zone"), self.latency_ms, source)


class ReadingBatch(BaseModel):
    """The `{"readings": [...]}` shape of POST /api/sensors."""

    readings: list[Any]


ControlAction = Literal["set_valve", "set_pump", "set_mode", "isolate", "restore", "ack_alert",
                        "reset_demo"]

# What `value` each action takes; shown in the OpenAPI document and in 422 messages.
CONTROL_VALUES = {
    "set_valve": "target: a valve link id; value: its opening, a number 0-100 (%), e.g. 40",
    "set_pump": "target: a pump link id; value: 'on', 'off', or a speed 0-100 (%), e.g. 'off' or 80",
    "set_mode": "value: 'auto' (the engine's decisions are sent to devices) or 'manual' (it only recommends)",
    "isolate": "target: a node or link id; no value",
    "restore": "target: a node or link id isolated before; no value",
    "ack_alert": "target: an alert id; no value (POST /api/alerts/<id>/ack does the same)",
    "reset_demo": "no target or value: forgets ad-hoc sensors (not in the network model), alerts and decisions",
}
CONTROL_EXAMPLES = [
    {"action": "set_valve", "target": "V_CJF_CENTRAL", "value": 40, "reason": "pressure test"},
    {"action": "set_pump", "target": "P_TAT_SOUTH", "value": "off", "reason": "maintenance"},
    {"action": "set_pump", "target": "P_TAT_SOUTH", "value": 80},
    {"action": "set_mode", "value": "auto"},
    {"action": "isolate", "target": "SRC_CWSS_4", "reason": "contamination upstream"},
    {"action": "restore", "target": "SRC_CWSS_4"},
    {"action": "ack_alert", "target": "6650a1f2-3"},
    {"action": "reset_demo", "reason": "end of the API tour"},
]


class ControlRequest(BaseModel):
    """Body of POST /api/control and of the `/control` namespace's `control` event.

    The target and value each action takes are in CONTROL_VALUES (and the
    OpenAPI document's description of `action`).
    """

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": CONTROL_EXAMPLES})

    action: ControlAction = Field(description="; ".join(f"`{a}`: {v}" for a, v in CONTROL_VALUES.items()))
    target: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH,
                               description="the node, link or alert the action applies to")
    value: str | float | int | bool | None = Field(
        default=None, description="set_valve: 0-100 (%); set_pump: 'on', 'off' or 0-100 (%); "
                                  "set_mode: 'auto' or 'manual'; others: none",
        examples=[40, "off", 80, "auto"])
    reason: str | None = Field(default=None, max_length=500, description="kept in the audit trail")


class SimulationEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event: EventKind
    target: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    magnitude: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0
    duration_s: Annotated[float, Field(gt=0, le=SECONDS_PER_DAY, allow_inf_nan=False)] = 300.0


class SimulationBaseline(BaseModel):
    model_config = ConfigDict(extra="ignore")

    target: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    factor: Annotated[float, Field(ge=0.2, le=3.0, allow_inf_nan=False)]


class ErrorDetail(BaseModel):
    index: int | None = None
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorEnvelope(BaseModel):
    """Every error response: `{"error": {"code", "message", "details"}}`."""

    error: ErrorBody


class AckMany(BaseModel):
    """Body of POST /api/alerts/ack: the alarms to acknowledge ("acknowledge all visible")."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"ids": ["6650a1f2-3", "6650a1f2-7"]}]})

    ids: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(min_length=1, max_length=1000)


class ShelveRequest(BaseModel):
    """Body of POST /api/alerts/<id>/shelve: hide the alarm for `duration_s` seconds."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "examples": [{"duration_s": 3600, "reason": "sensor under maintenance"}]})

    duration_s: Annotated[float, Field(ge=SHELVE_MIN_S, le=SHELVE_MAX_S, allow_inf_nan=False,
                                       description=f"seconds, {SHELVE_MIN_S:g} to {SHELVE_MAX_S:g} (24 h)",
                                       examples=[900, 3600, 28800])]
    reason: str | None = Field(default=None, max_length=500)
