"""InfluxDB history: batched writes that lose nothing, InfluxQL reads, one HTTP stack.

Writes: `write_readings` only formats line protocol into the writer's buffer
(the hot path never waits on I/O); HeldWriter (influx_writer) sends batches
with influxdb-client's synchronous WriteApi, and holds in the disk spool
whatever the store does not take yet (influx_status says which answers those
are). We batch ourselves rather than use the client's batching WriteApi:
measured under eventlet (bench/influx_write.py), its rx pipeline reached 31%
of a raw POST against 85% this way, and its retries keep batches in memory.

Reads and setup: InfluxQL over the v1-compatible `/query` endpoint (served by
InfluxDB 1.x, 2.x through its database/retention-policy mapping, and 3.x),
sent through the same influxdb-client ApiClient as the writes, so one
connection pool, one timeout and one token header serve everything. The
client has no InfluxQL API of its own; Flux (its QueryApi) is not served by
1.x, which is what Debian ships and the tests run.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Callable

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from app.adapters import influx_text as lp
from app.adapters.influx_schema import READING, RESAMPLE, InfluxSchema1x, InfluxSchema2x, schema_kind
from app.adapters.influx_status import backoff_s, error_message
from app.adapters.influx_writer import HeldWriter
from app.adapters.spool import DiskSpool
from app.domain.clock import iso
from app.domain.records import GOOD, Reading
from app.errors import DomainError
from app.services.history import RESOLUTIONS, HistoryQuery, HistoryRepository

logger = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 10.0
# Formatted tag sets kept for reuse (one per series); bounds the cache.
MAX_CACHED_SERIES = 50_000
# A point older than this when it arrives may have missed the 1 min continuous
# query's window (5 min, run every minute): its rollup buckets are recomputed.
LATE_AFTER_S = RESAMPLE["1m"].window_s - 60
# Back-fills of late points run at most this often (each is 3 queries a sensor).
BACKFILL_INTERVAL_S = 1.0
# Sensors with late points remembered for back-fill; past this, the oldest wait.
MAX_BACKFILL_SENSORS = 10_000


class HistoryUnavailable(DomainError):
    status = 503
    code = "history_unavailable"


class InfluxHistory(HistoryRepository):
    name = "influxdb"
    keeps_quality = True

    def __init__(self, url: str, token: str, org: str, bucket: str, spool: DiskSpool,
                 spawn: Callable, sleep: Callable[[float], None], *,
                 batch_lines: int = 5000, flush_interval_s: float = 0.1, gzip: bool = False,
                 retry_max_s: float = 30.0, alert_after_s: float = 60.0,
                 raw_retention_s: float | None = None, rollup_retention_s: float | None = None,
                 on_failing: Callable[[dict], None] | None = None,
                 on_recovered: Callable[[dict], None] | None = None):
        self.url = url.rstrip("/")
        self.org = org or "-"
        self.bucket = bucket
        self.spool = spool
        self.client = InfluxDBClient(url=self.url, token=token or "", org=self.org,
                                     enable_gzip=gzip, timeout=int(QUERY_TIMEOUT_S * 1000))
        self._write_api = None
        self.writer = HeldWriter(self._send, spool, spawn, sleep, batch_lines=batch_lines,
                                 flush_interval_s=flush_interval_s, retry_max_s=retry_max_s,
                                 alert_after_s=alert_after_s, ping=self.client.ping,
                                 on_failing=on_failing, on_recovered=on_recovered)
        self._tag_prefix: dict[tuple, str] = {}
        self.spawn, self.sleep = spawn, sleep
        self.raw_retention_s = raw_retention_s
        self.rollup_retention_s = rollup_retention_s
        self.schema = None
        self.schema_state: dict = {"state": "pending", "kind": None, "changes": [], "error": None}
        self._late: dict[str, list[float]] = {}      # sensor -> [oldest, newest] late point
        # The request threads note late points while the writer's thread takes them to back-fill.
        self._late_lock = threading.Lock()
        self._backfilling = False
        self._last_backfill = 0.0
        self.backfilled = 0
        self.writer.after_delivery.append(self._backfill_late)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.writer.start()
        self.spawn(self._set_up_schema)

    def _set_up_schema(self) -> None:
        """Retention and rollups, retried in the background until the store answers."""
        attempt = 0
        while self.schema is None:
            try:
                version = self.client.version()
                if schema_kind(version) == "2.x":
                    schema = InfluxSchema2x(self.client, self.org, self.bucket,
                                            self.raw_retention_s, self.rollup_retention_s)
                else:     # 1.x, 1.8's v2 compatibility, and servers that do not say
                    schema = InfluxSchema1x(self._statement, self.bucket,
                                            self.raw_retention_s, self.rollup_retention_s)
                changes = schema.ensure()
            except Exception as error:
                attempt += 1
                self.schema_state.update(state="retrying", error=str(error)[:300])
                logger.warning("InfluxDB retention/rollup setup failed (%s); retrying", str(error)[:300])
                self.sleep(backoff_s(attempt, 1.0, 60.0))
                continue
            self.schema = schema
            self.schema_state.update(state="ready", kind=schema.kind, version=version,
                                     changes=changes, error=None)
            if changes:
                logger.info("InfluxDB %s (%s): %s", schema.kind, version, "; ".join(changes))
            else:
                logger.info("InfluxDB %s (%s): retention and rollups already as configured",
                            schema.kind, version)

    def stop(self) -> None:
        """Write (or spool) everything buffered, then close the client."""
        if self._write_api is None:
            self._write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.writer.stop()
        self.client.close()

    def _send(self, data: bytes) -> None:
        self._write_api.write(bucket=self.bucket, org=self.org, record=data)

    # -- writes ---------------------------------------------------------------
    def write_readings(self, records: list[Reading]) -> None:
        prefixes = self._tag_prefix
        lines = []
        for r in records:
            key = (r.sensor_id, r.metric, r.node_id, r.zone, r.source)
            prefix = prefixes.get(key)
            if prefix is None:
                if len(prefixes) > MAX_CACHED_SERIES:   # senders varying tags freely
                    prefixes.clear()
                # `source`: sensor, api:<id>, satellite:<id> or forecast (fusion of sources).
                tags = {"sensor_id": r.sensor_id, "metric": r.metric,
                        "node_id": r.node_id, "zone": r.zone, "source": r.source}
                prefix = prefixes[key] = READING + "".join(
                    f",{k}={lp.tag(v)}" for k, v in sorted(tags.items()) if v)
            latency = r.latency_ms
            extra = "" if latency is None else f",latency_ms={float(latency)!r}"
            quality = r.quality
            if quality != GOOD:     # flagged data is stored, flagged
                extra += f",quality={lp.field_value(quality)}"
            lines.append(f"{prefix} value={float(r.value)!r}{extra} {int(r.ts * 1e9)}")
        self.writer.add(lines)
        self._note_late(records)

    def _note_late(self, records: list[Reading]) -> None:
        """Remember sensors with points the continuous queries will not see (after `add`)."""
        before = time.time() - LATE_AFTER_S
        spans: dict[str, list[float]] = {}
        for r in records:
            ts = r.ts
            if ts < before:
                span = spans.get(r.sensor_id)
                if span is None:
                    spans[r.sensor_id] = [ts, ts]
                elif ts < span[0]:
                    span[0] = ts
                elif ts > span[1]:
                    span[1] = ts
        if spans:
            with self._late_lock:     # merged whole, never into a map the back-fill already took
                self._merge_late(spans)

    def _merge_late(self, spans: dict[str, list[float]]) -> None:
        late = self._late
        for sensor_id, (oldest, newest) in spans.items():
            span = late.get(sensor_id)
            if span is None:
                if len(late) < MAX_BACKFILL_SENSORS:
                    late[sensor_id] = [oldest, newest]
            else:
                span[0], span[1] = min(span[0], oldest), max(span[1], newest)

    def _backfill_late(self) -> None:
        """Roll up late points once they are written: recompute only their buckets."""
        if not self._late or self.schema is None or \
                time.monotonic() - self._last_backfill < BACKFILL_INTERVAL_S:
            return
        self._last_backfill = time.monotonic()
        with self._late_lock:
            late, self._late = self._late, {}
            self._backfilling = True
        try:
            for sensor_id, (oldest, newest) in late.items():
                try:
                    self.schema.backfill(sensor_id, oldest, newest)
                    self.backfilled += 1
                except Exception as error:   # try again next round, with the ones not done yet
                    left = dict(list(late.items())[list(late).index(sensor_id):])
                    with self._late_lock:
                        self._merge_late(left)
                    logger.warning("rollup back-fill for %s failed: %s", sensor_id, str(error)[:200])
                    return
        finally:
            self._backfilling = False

    def backfill_pending(self) -> bool:
        """Late points noted whose rollup buckets are not recomputed yet (or being recomputed)."""
        return bool(self._late) or self._backfilling

    def write_event(self, measurement: str, tags: dict, fields: dict, ts: float) -> None:
        self.writer.add([lp.line(measurement, tags, fields, int(ts * 1e9))])

    # -- health ------------------------------------------------------------------
    def health(self) -> str:
        return self.writer.state()

    def health_detail(self) -> dict:
        return self.writer.detail()

    def status(self) -> dict:
        writer, spool = self.writer, self.spool
        rejected = dict(writer.rejected)
        if spool.dropped_points:
            rejected["spool_full"] = spool.dropped_points
        return {"backend": "influxdb", "state": writer.state(), "queued": writer.queued(),
                "written": writer.written, "spooled": spool.pending_points(),
                "spooled_total": writer.held_total, "spool_bytes": spool.pending_bytes(),
                "splits": writer.splits, "rejected": rejected,
                "schema": dict(self.schema_state), "backfills": self.backfilled,
                "backfill_pending": self.backfill_pending(),
                "retention": {"raw_s": self.raw_retention_s, "rollup_s": self.rollup_retention_s},
                "failed": sum(rejected.values()),
                "last_error": (writer.detail()["last_error"] or {}).get("message")}

    # -- reads ---------------------------------------------------------------------
    def _statement(self, text: str) -> list[dict]:
        """A setup statement; InfluxQL errors raise (they are not 'no data').
        Rows carry their series' name in `_series` (SHOW CONTINUOUS QUERIES: the database)."""
        return self._query(text, strict=True)

    def _query(self, text: str, strict: bool = False) -> list[dict]:
        try:
            reply = self.client.api_client.call_api(
                "/query", "POST", query_params=[("db", self.bucket), ("q", text), ("epoch", "ns")],
                header_params={"Accept": "application/json"}, _preload_content=False,
                _return_http_data_only=True, _request_timeout=QUERY_TIMEOUT_S * 1000)   # ms
            body = reply.data
        except ApiException as error:
            raise HistoryUnavailable(f"history query failed ({error.status}: "
                                     f"{error_message(error.body)[:200]})") from None
        except Exception as error:   # network errors and timeouts, from urllib3
            logger.warning("history query failed: %s", error)
            raise HistoryUnavailable("the history store is unreachable") from None
        result = json.loads(body).get("results", [{}])[0]
        if "error" in result and not strict and "retention policy not found" in result["error"]:
            return []          # a rollup not set up (yet): no rows, the raw tail answers
        if "error" in result:
            raise HistoryUnavailable(f"history query failed: {result['error']}")
        rows = []
        for series in result.get("series", []):
            columns = series["columns"]
            rows += [{**dict(zip(columns, values)), "_series": series.get("name")} if strict
                     else dict(zip(columns, values)) for values in series.get("values", [])]
        return rows

    def raw_edge(self, sensor_id: str, now: float) -> float | None:
        return None if self.raw_retention_s is None else now - self.raw_retention_s

    def _where(self, sensor_id: str, start: float, stop: float) -> str:
        return (f"{lp.identifier('sensor_id')} = {lp.string_literal(sensor_id)} "
                f"AND time >= {int(start * 1e9)} AND time < {int(stop * 1e9)}")

    def _source(self, resolution: str) -> str:
        if resolution == "raw" or self.schema is None:
            return lp.identifier(READING)
        return self.schema.source(resolution)

    def _rollup_query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        """Rollup buckets, and the newest ones (not rolled up yet) computed from raw points."""
        width = RESOLUTIONS[query.resolution]
        start = math.floor(query.start / width) * width      # whole buckets: the first one too
        rows = []
        if self.schema is not None:
            rows = self._query(
                f'SELECT {lp.identifier(query.fn or "mean")} AS v, "min" AS lo, "max" AS hi, "count" AS n '
                f"FROM {self._source(query.resolution)} WHERE {self._where(query.sensor_id, start, query.stop)} "
                f"ORDER BY time DESC LIMIT {query.limit + 1}")
        tail_from = rows[0]["time"] / 1e9 if rows else start
        edge = self.raw_edge(query.sensor_id, time.time())
        if edge is not None and edge > tail_from:   # no raw there: the rollup's buckets stand
            tail_from = math.ceil(edge / width) * width
        tail = []
        if tail_from < query.stop:
            value = lp.identifier("value")
            tail = self._query(
                f"SELECT {query.fn or 'mean'}({value}) AS v, min({value}) AS lo, max({value}) AS hi, "
                f"count({value}) AS n "
                f"FROM {self._source('raw')} WHERE {self._where(query.sensor_id, tail_from, query.stop)} "
                f"GROUP BY time({int(width)}s) fill(none) ORDER BY time DESC LIMIT {query.limit + 1}")
            rows = [row for row in rows if row["time"] / 1e9 < tail_from]
        rows = tail + rows                     # newest first
        capped = len(rows) > query.limit
        rows = rows[:query.limit][::-1]
        return [{"t": iso(row["time"] / 1e9), "v": _number(row["v"]), "min": _number(row["lo"]),
                 "max": _number(row["hi"]), "count": int(row["n"] or 0)} for row in rows], capped

    def query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        if query.resolution != "raw":
            return self._rollup_query(query)
        where = (f"{lp.identifier('sensor_id')} = {lp.string_literal(query.sensor_id)} "
                 f"AND time >= {int(query.start * 1e9)} AND time < {int(query.stop * 1e9)}")
        if query.every is None:
            select = f"SELECT {lp.identifier('value')} AS v, {lp.identifier('quality')} AS q"
            group = ""
        else:
            select = f"SELECT {query.fn}({lp.identifier('value')}) AS v"
            group = f" GROUP BY time({int(query.every * 1000)}ms) fill(none)"
        text = (f"{select} FROM {lp.identifier(READING)} WHERE {where}{group} "
                f"ORDER BY time DESC LIMIT {query.limit + 1}")
        rows = self._query(text)
        capped = len(rows) > query.limit
        rows = rows[:query.limit][::-1]
        points = [{"t": iso(row["time"] / 1e9), "v": row["v"] if query.fn == "count" else _number(row["v"])}
                  for row in rows]
        for point, row in zip(points, rows):
            if row.get("q"):                  # suspect or bad readings say so
                point["quality"] = row["q"]
        return points, capped

    def events(self, measurement: str, limit: int) -> list[dict]:
        text = f"SELECT * FROM {lp.identifier(measurement)} ORDER BY time DESC LIMIT {int(limit)}"
        rows = self._query(text)
        return [{**{k: v for k, v in row.items() if v is not None and k != "time"},
                 "time": iso(row["time"] / 1e9)} for row in rows]


def _number(value):
    """InfluxDB's JSON writes large floats as integer literals: read them back as floats."""
    return None if value is None else float(value)
