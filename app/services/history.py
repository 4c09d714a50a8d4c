"""The history port: where readings, decisions, controls and alerts are kept.

Two adapters implement it: the embedded in-memory one (the default) and
InfluxDB. The service layer only ever sees this interface.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone

from app.errors import InvalidInput

AGGREGATES = ("mean", "min", "max", "last", "count")
# Most points one history query returns; the answer says when it was capped.
MAX_HISTORY_POINTS = 10_000

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class HistoryQuery:
    sensor_id: str
    start: float          # epoch seconds
    stop: float
    every: float | None   # bucket width in seconds, or None for raw points
    fn: str | None
    limit: int = MAX_HISTORY_POINTS


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput("bad duration", [{"field": "every", "message":
                           f"'{text}' is not a duration like 30s, 1m, 1h"}])
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_time(text: str, now: float, field: str) -> float:
    """`now`, a relative time like `-1h`, or an ISO 8601 timestamp."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        try:
            return now - parse_duration(text[1:])
        except InvalidInput:
            pass
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return moment.timestamp()
        except ValueError:
            pass
    raise InvalidInput("bad time", [{"field": field, "message":
                       f"'{text}' is not 'now', a relative time like -1h, or an ISO timestamp"}])


def build_query(sensor_id: str, args: dict, now: float) -> HistoryQuery:
    start = parse_time(args.get("start", "-1h"), now, "start")
    stop = parse_time(args.get("stop", "now"), now, "stop")
    if stop <= start:
        raise InvalidInput("empty range", [{"field": "stop", "message": "stop must be after start"}])
    every = parse_duration(args["every"]) if args.get("every") else None
    fn = args.get("fn")
    if fn is not None and fn not in AGGREGATES:
        raise InvalidInput("bad fn", [{"field": "fn", "message": f"fn must be one of {', '.join(AGGREGATES)}"}])
    if every is not None and fn is None:
        fn = "mean"
    if fn is not None and every is None:
        raise InvalidInput("fn needs every", [{"field": "every", "message": "fn needs a bucket width in every"}])
    return HistoryQuery(sensor_id, start, stop, every, fn)


def bucket_start(ts: float, every: float) -> float:
    return ts - (ts % every)


class HistoryRepository(ABC):
    """What the service layer needs of a history store."""

    name = "history"

    def start(self) -> None:
        """Begin background work (flushing, retries). Default: nothing."""

    def stop(self) -> None:
        """Flush what is buffered. Called once at shutdown."""

    @abstractmethod
    def write_readings(self, records: list[dict]) -> None:
        """Accept validated readings. Must not block on I/O."""

    @abstractmethod
    def write_event(self, measurement: str, tags: dict, fields: dict, ts: float) -> None:
        """Record a decision, control or alert."""

    @abstractmethod
    def query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        """Points `[{"t": ISO, "v": number}]` and whether the result was capped."""

    @abstractmethod
    def events(self, measurement: str, limit: int) -> list[dict]:
        """Recent events of one measurement, newest first."""

    @abstractmethod
    def health(self) -> str:
        """`ok`, `degraded` (writes held or draining), `down` (unreachable) or `disabled`."""

    def health_detail(self) -> dict | None:
        """State of writes for /api/health: last error, spool depth. None: nothing to say."""
        return None

    def status(self) -> dict:
        return {}
