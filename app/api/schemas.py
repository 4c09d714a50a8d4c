"""Response shapes, for the OpenAPI document (the wire types of requests are in app.models).

They name the fields clients rely on; `extra="allow"` leaves room for the
fields we add without breaking the published schema.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

from app.logs import LEVELS
from app.models import AckMany, Reading, ReadingBatch, ShelveRequest  # noqa: F401 (re-exported)
from app.services.alerts import ALARM_STATES, SEVERITIES, STATE_FILTERS
from app.services.decisions import STATES as DECISION_STATES
from app.services.history import AGGREGATES, RESOLUTIONS
from app.services.history_export import FORMATS

# The services' vocabularies, as the document's enums (each defined once, in its service).
Resolution = Literal[tuple(RESOLUTIONS)]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ReadingsBody(RootModel[Union[Reading, list[Reading], ReadingBatch]]):
    """One reading, a list of up to 5000, or {"readings": [...]}."""


class IngestCreated(Open):
    success: bool
    message: str
    sensorId: str
    timestamp: str


class BatchAccepted(Open):
    accepted: int


class LiveReading(Open):
    sensor_id: str
    value: float
    metric: str
    unit: str | None = None
    node_id: str | None = None
    zone: str | None = None
    timestamp: str
    latency_ms: float | None = None
    source: str | None = Field(None, description="sensor, or the external source it came from")
    quality: str | None = None
    quality_reason: str | None = None


class ListedReading(LiveReading):
    received_at: str
    stale: bool


class SensorList(Open):
    sensors: list[ListedReading]
    count: int


class Point(Open):
    t: str
    v: float


class SensorDetail(LiveReading):
    recent: list[Point]


class LatestFound(Open):
    sensorId: str
    zone: str | None = None
    value: float
    latencyMs: float | None = None
    timestamp: str
    found: Literal[True]


class LatestMissing(Open):
    sensorId: str
    found: Literal[False]
    error: dict[str, Any]


class HistoryParams(BaseModel):
    start: str = Field("-1h", description="now, a relative time like -1h, or ISO 8601")
    stop: str = Field("now", description="now, a relative time like -5m, or ISO 8601")
    every: str | None = Field(None, description="ad-hoc bucket width over raw points, e.g. 5m")
    fn: Literal[AGGREGATES] | None = None
    resolution: Resolution | None = Field(
        None, description="raw or a rollup; by default raw up to 6 h, 1m up to 7 d, 1h up to 180 d, 1d beyond")


class ExportParams(BaseModel):
    sensor_id: list[str] = Field(description="a sensor; repeat for several (at most 100)")
    start: str = Field("-1h", description="now, a relative time like -30d, or ISO 8601")
    stop: str = Field("now", description="now, a relative time like -5m, or ISO 8601")
    format: Literal[tuple(FORMATS)] = Field("csv", description="columns time, sensor_id, metric, unit, "
                                             "value (or mean, min, max, count for rollups), quality")
    resolution: Resolution | None = Field(None, description="as for /api/history")


class HistoryPoint(Point):
    min: float | None = Field(None, description="rollups: lowest value in the bucket")
    max: float | None = Field(None, description="rollups: highest value in the bucket")
    count: int | None = Field(None, description="rollups: readings in the bucket")


class HistorySegment(Open):
    resolution: str
    start: str
    stop: str


class HistoryResponse(Open):
    sensor_id: str
    resolution: str = Field(description="raw, 1m, 1h or 1d: what answered (v is the mean for rollups)")
    segments: list[HistorySegment] = Field(description="which resolution answered which part of the range")
    points: list[HistoryPoint]
    capped: bool


class NetworkResponse(Open):
    nodes: list[dict[str, Any]]
    links: list[dict[str, Any]]


class RoutingResponse(Open):
    generated_at: str | None
    status: str
    objective: float | None
    solve_ms: float | None
    flows: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    sources: list[dict[str, Any]]


class PlanResponse(Open):
    status: str
    horizon_h: float
    step_h: float
    solve_ms: float | None
    created_at: str | None
    steps: list[dict[str, Any]]
    totals: dict[str, float]


class LimitParams(BaseModel):
    limit: int = Field(10, ge=1, le=500)


class Decision(Open):
    id: str
    timestamp: str
    kind: str
    action: str
    target: str
    reason: str
    confidence: float
    confidence_reason: str | None = None
    state: Literal[DECISION_STATES] | None = None
    state_at: str | None = None
    actions: list[dict[str, Any]] | None = None


class DecisionStateResponse(Open):
    ok: bool
    decision: dict[str, Any]


class DecisionList(Open):
    decisions: list[Decision]


class AlertParams(BaseModel):
    state: Literal[STATE_FILTERS] = Field(
        "active", description="active: the condition is present; open: every alarm not yet cleared "
                              "and acknowledged; all: with the archive; or one ISA-18.2 state, or shelved")


class Alert(Open):
    id: str
    severity: Literal[SEVERITIES]
    state: Literal["active", "acknowledged", "cleared"] = Field(
        description="the original three states, kept for existing clients")
    alarm_state: Literal[ALARM_STATES]
    active: bool
    acknowledged: bool
    shelved: bool
    shelved_until: str | None = None
    message: str
    raised_at: str


class AlertSummary(Open):
    states: dict[str, int]
    shelved: int
    active_by_severity: dict[str, int]
    unacknowledged: int


class AlertList(Open):
    alerts: list[Alert]
    summary: AlertSummary | None = None


class AlertOne(Open):
    alert: Alert


class AckManyResult(Open):
    ok: bool
    acknowledged: list[str]


class WqiList(Open):
    stations: list[dict[str, Any]]


class Forecast(Open):
    generated_at: str | None = Field(description="ISO 8601 UTC")
    step_s: float = Field(description="width of a forecast step (s)")
    zones: list[dict[str, Any]] = Field(description="per zone: node_id, steps [{t: ISO 8601 UTC slot start, "
                                                    "demand: MLD}], method, estimate, mape")


class Health(Open):
    status: Literal["ok", "degraded"]
    network: dict[str, Any]
    services: dict[str, Any]


class Status(Open):
    uptime_s: float
    clients: int


class ControlResponse(Open):
    ok: bool
    control: dict[str, Any]


class PreviewSource(Open):
    node_id: str
    name: str
    capacity: float
    planned: float = Field(description="output in the plan in force, MLD")
    would_be: float = Field(description="output with the control, MLD")
    change: float


class PreviewZone(Open):
    node_id: str
    name: str
    demand: float
    planned_supplied: float
    would_supply: float
    planned_shortfall: float
    would_shortfall: float
    shortfall_change: float = Field(description="now, the first step (MLD)")
    peak_shortfall_change: float = Field(description="the largest change at any step of the horizon (MLD)")
    horizon_shortfall_change_ml: float = Field(description="over the horizon (ML)")


class PreviewLink(Open):
    link_id: str
    name: str
    kind: str
    capacity: float
    planned: float
    would_be: float
    change: float


class ControlPreview(Open):
    action: str
    target: str | None
    value: Any = Field(description="the value as POST /api/control would record it")
    status: Literal["optimal", "infeasible", "degraded", "unchanged", "no_effect", "no_plan"] = Field(
        description="the plan with the control (optimal, infeasible, degraded); unchanged: it changes no "
                    "bound of the plan; no_effect: not a network control; no_plan: none to compare with")
    feasible: bool | None
    sentence: str = Field(description="the consequence in one line, e.g. 'Isolating Cauvery WSS Stage IV "
                                      "cuts 770 MLD; zones RR Nagar and Yelahanka / Dasarahalli short by 180 MLD.'")
    basis: str = Field(description="which plan it was taken from, and how")
    plan_at: str | None = Field(default=None, description="when the plan in force was made (its inputs' time)")
    details: list[str]
    sources: list[PreviewSource] = Field(default=[], description="sources whose output changes")
    zones: list[PreviewZone] = Field(default=[], description="zones whose shortfall changes")
    links: list[PreviewLink] = Field(default=[], description="links whose flow changes materially, "
                                                             "largest first, and the target")
    actions: list[dict[str, Any]] = Field(default=[], description="what the next plan would decide, as in "
                                                                  "a decision's actions (no commands sent)")
    totals: dict[str, float] = Field(default={}, description="sources, storage draw, supplied and shortfall, "
                                                             "planned and would_be, MLD")
    commands: list[dict[str, Any]] = Field(default=[], description="set_mode auto: the valves and pumps "
                                                                   "the engine would command away from "
                                                                   "operators' settings")
    solve_ms: float | None = None


class ControlPreviewResponse(Open):
    ok: bool
    preview: ControlPreview


class ControlList(Open):
    controls: list[dict[str, Any]]


class LogParams(BaseModel):
    limit: int = Field(100, ge=1, le=2000)
    level: Literal[LEVELS] = "INFO"


class LogRecord(Open):
    time: str = Field(description="ISO 8601 UTC")
    level: str
    logger: str
    message: str


class LogList(Open):
    logs: list[LogRecord]


class SimulatedEvent(Open):
    id: int
    event: str
    target: str | None = None
    magnitude: float
    start: str = Field(description="ISO 8601 UTC")
    end: str = Field(description="ISO 8601 UTC")


class SimulationState(Open):
    running: bool
    events: list[SimulatedEvent] = []


class SimulationEventCreated(Open):
    ok: bool
    event: SimulatedEvent


class SimulationBaselineSet(Open):
    ok: bool
    target: str
    factor: float


class SourceState(Open):
    id: str
    type: Literal["ogd", "open_meteo", "stac"]
    source: str
    status: Literal["ok", "failing", "paused", "disabled"]
    url: str
    interval_s: float
    last_success: str | None = None
    last_error: dict | None = None
    next_fetch: str | None = None
    records_fetched: int
    records_mapped: int
    records_dropped: int
    dropped_reasons: dict[str, int]


class SourceList(Open):
    sources: list[SourceState]
    count: int
    enabled: bool


class SourceRefreshed(Open):
    ok: bool
    source: SourceState
