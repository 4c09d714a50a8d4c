"""The history port: where readings, decisions, controls and alerts are kept.

Two adapters implement it: the embedded in-memory one (the default) and
InfluxDB. The service layer only ever sees this interface.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone

from app.domain.clock import iso
from app.domain.records import Reading
from app.errors import InvalidInput

# Aggregates a query may ask for (`fn`); the rollups keep each of them.
AGGREGATES = ("mean", "min", "max", "count", "last")   # this order is the rollups' CQ text
# Most points one history query returns; the answer says when it was capped.
# A week of 1-minute buckets (10,080) fits.
MAX_HISTORY_POINTS = 11_000

# Resolutions: raw points, and rollups keeping mean/min/max/count/last per bucket.
RESOLUTIONS = {"raw": None, "1m": 60.0, "1h": 3600.0, "1d": 86400.0}
ROLLUPS = ("1m", "1h", "1d")
# Widest range each resolution answers when the caller does not choose:
# raw up to 6 h, 1 min up to 7 d, 1 h up to 180 d, 1 d beyond.
AUTO_RESOLUTION = ((6 * 3600, "raw"), (7 * 86400, "1m"), (180 * 86400, "1h"))

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
# Seconds in each unit a duration may be written in (`90d`, `104w`, `-1h` ...).
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Times a query may name: within what an ISO timestamp can say (years 1 to 9999), with a
# day's margin, so no bucket start or answer ever falls outside it.
EARLIEST_TIME = datetime(1, 1, 2, tzinfo=timezone.utc).timestamp()
LATEST_TIME = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True)
class HistoryQuery:
    sensor_id: str
    start: float          # epoch seconds
    stop: float
    every: float | None   # bucket width in seconds for an ad-hoc aggregate of raw points
    fn: str | None
    limit: int = MAX_HISTORY_POINTS
    resolution: str = "raw"   # raw, or a rollup: points then carry v (mean), min, max, count

    def part(self, start: float, stop: float, resolution: str) -> "HistoryQuery":
        return HistoryQuery(self.sensor_id, start, stop, self.every, self.fn, self.limit, resolution)


def pick_resolution(start: float, stop: float, asked: str | None = None) -> str:
    if asked:
        if asked not in RESOLUTIONS:
            raise InvalidInput("bad resolution", [{"field": "resolution", "message":
                               f"resolution must be one of {', '.join(RESOLUTIONS)}"}])
        return asked
    span = stop - start
    return next((name for widest, name in AUTO_RESOLUTION if span <= widest), "1d")


def parse_retention(text: str) -> float | None:
    """`90d`, `104w`, `12h` as seconds; `0` or `inf` means forever (None)."""
    text = str(text).strip().lower()
    if text in ("0", "inf", ""):
        return None
    return parse_duration(text)


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    try:
        seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)] if match else 0
        float(seconds)
    except (ValueError, OverflowError):       # more digits than an int or a float holds
        seconds = 0
    if not seconds:
        raise InvalidInput("bad duration", [{"field": "every", "message":
                           f"'{text[:40]}' is not a duration like 30s, 1m, 1h"}])
    return seconds


def parse_time(text: str, now: float, field: str) -> float:
    """`now`, a relative time like `-1h`, or an ISO 8601 timestamp."""
    text = text.strip()
    moment = None
    if text == "now":
        return now
    if text.startswith("-"):
        try:
            moment = now - parse_duration(text[1:])
        except InvalidInput:
            pass
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            moment = parsed.timestamp()
        except (ValueError, OverflowError):
            pass
    if moment is not None:
        if EARLIEST_TIME <= moment <= LATEST_TIME:
            return moment
        raise InvalidInput("time out of range", [{"field": field, "message":
                           f"'{text[:40]}' is outside 0001-01-02 to 9999-12-30"}])
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
    rollup = next((name for name, width in RESOLUTIONS.items() if width and width == every), None)
    if rollup is not None and not args.get("resolution"):
        # Buckets of a rollup's width come from that rollup (v is the fn of each bucket).
        return HistoryQuery(sensor_id, start, stop, None, fn, resolution=rollup)
    resolution = "raw" if every is not None else pick_resolution(start, stop, args.get("resolution"))
    return HistoryQuery(sensor_id, start, stop, every, fn, resolution=resolution)


def read_history(repository: "HistoryRepository", query: HistoryQuery, now: float) -> dict:
    """Points at the query's resolution; raw older than the store keeps comes from the 1 min rollup.

    Returns `{"points", "capped", "resolution", "segments"}`; `segments` says
    which resolution answered which part of the range, so a stitched answer
    is never mistaken for raw data.
    """
    edge = repository.raw_edge(query.sensor_id, now) if query.resolution == "raw" else None
    if edge is None or edge <= query.start:
        points, capped = repository.query(query)
        segments = [{"resolution": query.resolution, "start": iso(query.start), "stop": iso(query.stop)}]
    else:
        edge = min(edge, query.stop)
        older, capped_old = repository.query(query.part(query.start, edge, "1m"))
        newer, capped_new = repository.query(query.part(edge, query.stop, "raw")) \
            if edge < query.stop else ([], False)
        points, capped = older + newer, capped_old or capped_new
        segments = [{"resolution": "1m", "start": iso(query.start), "stop": iso(edge)}]
        if edge < query.stop:
            segments.append({"resolution": "raw", "start": iso(edge), "stop": iso(query.stop)})
    return {"points": points, "capped": capped, "resolution": query.resolution, "segments": segments}


def bucket_start(ts: float, every: float) -> float:
    return ts - (ts % every)


class HistoryRepository(ABC):
    """What the service layer needs of a history store."""

    name = "history"
    # Whether raw points carry the data-quality flag (`quality` on flagged ones).
    keeps_quality = False

    def start(self) -> None:
        """Begin background work (flushing, retries). Default: nothing."""

    def stop(self) -> None:
        """Flush what is buffered. Called once at shutdown."""

    @abstractmethod
    def write_readings(self, records: list[Reading]) -> None:
        """Accept validated readings. Must not block on I/O."""

    @abstractmethod
    def write_event(self, measurement: str, tags: dict, fields: dict, ts: float) -> None:
        """Record a decision, control or alert."""

    @abstractmethod
    def query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        """Points `[{"t": ISO, "v": number}]` (rollups add `min`, `max`, `count`), oldest
        first, and whether the result was capped (the newest `limit` are kept)."""

    def raw_edge(self, sensor_id: str, now: float) -> float | None:
        """Time before which raw points of this sensor are no longer kept; None: all kept."""
        return None

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
