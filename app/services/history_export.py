"""History export: CSV or NDJSON rows of one or more sensors, streamed page by page.

Nothing is held beyond one page: the range is walked in time windows sized
so that a window holds at most PAGE_POINTS rows (a window that comes back
capped is halved and asked again), each page answered like `/api/history`
(same resolution choice, same stitching at the raw retention edge).
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Callable, Iterator

from app.errors import InvalidInput
from app.services.history import (RESOLUTIONS, HistoryQuery, HistoryRepository, parse_time,
                                  pick_resolution, read_history)

# Werkzeug adds "; charset=utf-8" to text/* types itself.
FORMATS = {"csv": "text/csv", "ndjson": "application/x-ndjson"}
# Rows asked of the store at once: bounds the memory of a stream.
PAGE_POINTS = 5_000
# Raw windows start at an hour and adapt to the data rate; never narrower than this.
FIRST_RAW_WINDOW_S = 3600.0
MIN_WINDOW_S = 1e-3
# Sensors one export may name.
MAX_EXPORT_SENSORS = 100
# Rollup buckets one sensor's export may span (1m: ~694 days, 1h: ~114 years, 1d: ~2,700
# years): each PAGE_POINTS / 2 of them is one store query, so a range past this would keep
# the stream busy asking about empty windows. Checked before the first byte is sent.
MAX_EXPORT_BUCKETS = 1_000_000
RAW_COLUMNS = ("time", "sensor_id", "metric", "unit", "value", "quality")
ROLLUP_COLUMNS = ("time", "sensor_id", "metric", "unit", "mean", "min", "max", "count", "quality")


def export_request(args, now: float) -> dict:
    """Validate `sensor_id` (repeatable), `start`, `stop`, `format`, `resolution`."""
    sensors = [s for s in args.getlist("sensor_id") if s]
    if not sensors:
        raise InvalidInput("no sensor", [{"field": "sensor_id", "message": "give at least one sensor_id"}])
    if len(sensors) > MAX_EXPORT_SENSORS:
        raise InvalidInput("too many sensors", [{"field": "sensor_id", "message":
                           f"at most {MAX_EXPORT_SENSORS} sensor_id values per export"}])
    fmt = args.get("format", "csv")
    if fmt not in FORMATS:
        raise InvalidInput("bad format", [{"field": "format", "message": "format must be csv or ndjson"}])
    start = parse_time(args.get("start", "-1h"), now, "start")
    stop = parse_time(args.get("stop", "now"), now, "stop")
    if stop <= start:
        raise InvalidInput("empty range", [{"field": "stop", "message": "stop must be after start"}])
    resolution = pick_resolution(start, stop, args.get("resolution"))
    width = RESOLUTIONS[resolution]
    if width and (stop - start) / width > MAX_EXPORT_BUCKETS:
        raise InvalidInput("range too long", [{"field": "start", "message":
                           f"at most {MAX_EXPORT_BUCKETS:,} buckets of {resolution} per export: "
                           "narrow the range or ask for a coarser resolution"}])
    return {"sensors": list(dict.fromkeys(sensors)), "format": fmt, "start": start, "stop": stop,
            "resolution": resolution}


def pages(repository: HistoryRepository, sensor_id: str, start: float, stop: float,
          resolution: str, now: float) -> Iterator[list[dict]]:
    """The points of one sensor, oldest first, a page at a time."""
    width = RESOLUTIONS[resolution]
    if width:
        cursor = math.floor(start / width) * width
        window = PAGE_POINTS * width / 2       # room for rows of several series per bucket
    else:
        cursor, window = start, FIRST_RAW_WINDOW_S
    while cursor < stop:
        end = min(stop, cursor + window)
        query = HistoryQuery(sensor_id, cursor, end, None, None, limit=PAGE_POINTS, resolution=resolution)
        answer = read_history(repository, query, now)
        if answer["capped"] and end - cursor > max(MIN_WINDOW_S, width or 0):
            window = (end - cursor) / 2
            if width:
                window = max(width, math.floor(window / width) * width)
            continue
        if answer["points"]:
            yield answer["points"]
        cursor = end
        if not width and len(answer["points"]) < PAGE_POINTS // 4:
            window *= 2


def rows(repository: HistoryRepository, request: dict, now: float,
         describe: Callable[[str], dict]) -> Iterator[dict]:
    """Export rows in the documented columns. `describe(sensor_id)` gives `metric` and `unit`."""
    rollup = request["resolution"] != "raw"
    for sensor_id in request["sensors"]:
        known = describe(sensor_id) or {}
        for page in pages(repository, sensor_id, request["start"], request["stop"],
                          request["resolution"], now):
            for point in page:
                row = {"time": point["t"], "sensor_id": sensor_id,
                       "metric": point.get("metric") or known.get("metric") or "",
                       "unit": known.get("unit") or ""}
                if rollup or "count" in point:    # a stitched raw range has rollup rows too
                    row.update(mean=point["v"], min=point.get("min"), max=point.get("max"),
                               count=point.get("count"))
                else:
                    row["value"] = point["v"]
                # Flagged points carry their quality; the others are good where the store knows.
                row["quality"] = point.get("quality") or ("good" if repository.keeps_quality else "")
                yield row


def encode(rows_: Iterator[dict], fmt: str, rollup: bool) -> Iterator[str]:
    """Text chunks of CSV (header first) or NDJSON, one page of rows at a time."""
    if fmt == "ndjson":
        for row in rows_:
            yield json.dumps(row, separators=(",", ":")) + "\n"
        return
    columns = ROLLUP_COLUMNS if rollup else RAW_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for count, row in enumerate(rows_, 1):
        if not rollup and "mean" in row:          # stitched rollup rows in a raw export
            row = {**row, "value": row["mean"]}
        writer.writerow(row)
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
