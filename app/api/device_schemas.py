"""Wire types of the device registry and the device API (requests and, for OpenAPI, answers)."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models import PRINTABLE_PATTERN, SENSOR_ID_PATTERN, SLUG_PATTERN, ShortText

# A device id is its MQTT username and a topic level: no '/', '+' or '#'.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# Mapped keys and actuators per device: a device is one board, not a plant.
MAX_MAPPED_KEYS = 200
MAX_ACTUATORS = 50
# Longest command timeout a device may ask for (s).
MAX_COMMAND_TIMEOUT_S = 3600

TelemetryKey = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)]


class TelemetryMapping(BaseModel):
    """Where one of the device's keys goes: our sensor, its metric and unit, and a scale."""

    model_config = ConfigDict(extra="forbid")

    sensor_id: str = Field(pattern=SENSOR_ID_PATTERN)
    metric: str | None = Field(default=None, pattern=SLUG_PATTERN)
    unit: str | None = Field(default=None, max_length=32, pattern=PRINTABLE_PATTERN)
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0


class DevicePatch(BaseModel):
    """Body of PATCH /api/devices/<id>: the fields to change (telemetry and actuators are replaced whole)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN)] | None = None
    kind: str | None = Field(default=None, pattern=SLUG_PATTERN)
    node_id: ShortText | None = None
    telemetry: dict[TelemetryKey, TelemetryMapping] | None = Field(default=None, max_length=MAX_MAPPED_KEYS)
    actuators: list[ShortText] | None = Field(default=None, max_length=MAX_ACTUATORS)
    command_timeout_s: Annotated[float, Field(gt=0, le=MAX_COMMAND_TIMEOUT_S)] | None = None

    @field_validator("name", "kind")
    @classmethod
    def _not_null(cls, value):
        # Leaving a field out keeps it; null would erase a required one.
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class DeviceRegistration(DevicePatch):
    """Body of POST /api/devices."""

    id: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN)]
    kind: str = Field(pattern=SLUG_PATTERN)


class CommandAnswer(BaseModel):
    """A device's answer to a command."""

    status: str = Field(description="delivered, successful or failed")
    result: Any = None


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class DeviceView(Open):
    id: str
    name: str
    kind: str
    status: str
    last_seen: str | None = None
    last_keys: list[str]
    unmapped_keys: list[str]
    attributes: dict[str, Any]


class DeviceCreated(Open):
    id: str
    token: str = Field(description="shown this once; stored hashed")
    device: DeviceView


class DeviceList(Open):
    devices: list[DeviceView]
    count: int


class CommandView(Open):
    id: str
    device_id: str
    state: str
    history: list[dict]


class CommandList(Open):
    commands: list[CommandView]


class TelemetryAccepted(Open):
    accepted: int
    unmapped: int
    attributes: int


class AuditList(Open):
    audit: list[dict]


class DeviceDeleted(Open):
    ok: bool
    id: str


class DeviceUpdated(Open):
    device: DeviceView


class PendingCommands(Open):
    commands: list[dict]
