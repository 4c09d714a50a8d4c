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
from typing import Callable

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from app.adapters import influx_text as lp
from app.adapters.influx_status import error_message
from app.adapters.influx_writer import HeldWriter
from app.adapters.spool import DiskSpool
from app.errors import DomainError
from app.services.history import HistoryQuery, HistoryRepository
from app.services.store import iso

logger = logging.getLogger(__name__)

READING = "sensor_reading"
QUERY_TIMEOUT_S = 10.0
# Formatted tag sets kept for reuse (one per series); bounds the cache.
MAX_CACHED_SERIES = 50_000


class HistoryUnavailable(DomainError):
    status = 503
    code = "history_unavailable"


class InfluxHistory(HistoryRepository):
    name = "influxdb"

    def __init__(self, url: str, token: str, org: str, bucket: str, spool: DiskSpool,
                 spawn: Callable, sleep: Callable[[float], None], *,
                 batch_lines: int = 5000, flush_interval_s: float = 0.1, gzip: bool = False,
                 retry_max_s: float = 30.0, alert_after_s: float = 60.0,
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

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.writer.start()

    def stop(self) -> None:
        """Write (or spool) everything buffered, then close the client."""
        if self._write_api is None:
            self._write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.writer.stop()
        self.client.close()

    def _send(self, data: bytes) -> None:
        self._write_api.write(bucket=self.bucket, org=self.org, record=data)

    # -- writes ---------------------------------------------------------------
    def write_readings(self, records: list[dict]) -> None:
        prefixes = self._tag_prefix
        lines = []
        for r in records:
            key = (r["sensor_id"], r["metric"], r["node_id"], r["zone"], r.get("source"))
            prefix = prefixes.get(key)
            if prefix is None:
                if len(prefixes) > MAX_CACHED_SERIES:   # senders varying tags freely
                    prefixes.clear()
                # `source`: sensor, api:<id>, satellite:<id> or forecast (fusion of sources).
                tags = {"sensor_id": r["sensor_id"], "metric": r["metric"],
                        "node_id": r["node_id"], "zone": r["zone"], "source": r.get("source")}
                prefix = prefixes[key] = READING + "".join(
                    f",{k}={lp.tag(v)}" for k, v in sorted(tags.items()) if v)
            latency = r["latency_ms"]
            extra = "" if latency is None else f",latency_ms={float(latency)!r}"
            quality = r.get("quality")
            if quality and quality != "good":     # flagged data is stored, flagged
                extra += f",quality={lp.field_value(str(quality))}"
            lines.append(f"{prefix} value={float(r['value'])!r}{extra} {int(r['ts'] * 1e9)}")
        self.writer.add(lines)

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
                "failed": sum(rejected.values()),
                "last_error": (writer.detail()["last_error"] or {}).get("message")}

    # -- reads ---------------------------------------------------------------------
    def _query(self, text: str) -> list[dict]:
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
        if "error" in result:
            raise HistoryUnavailable(f"history query failed: {result['error']}")
        rows = []
        for series in result.get("series", []):
            columns = series["columns"]
            rows += [dict(zip(columns, values)) for values in series.get("values", [])]
        return rows

    def query(self, query: HistoryQuery) -> tuple[list[dict], bool]:
        where = (f"{lp.identifier('sensor_id')} = {lp.string_literal(query.sensor_id)} "
                 f"AND time >= {int(query.start * 1e9)} AND time < {int(query.stop * 1e9)}")
        if query.every is None:
            select = f"SELECT {lp.identifier('value')} AS v"
            group = ""
        else:
            select = f"SELECT {query.fn}({lp.identifier('value')}) AS v"
            group = f" GROUP BY time({int(query.every * 1000)}ms) fill(none)"
        text = (f"{select} FROM {lp.identifier(READING)} WHERE {where}{group} "
                f"ORDER BY time DESC LIMIT {query.limit + 1}")
        rows = self._query(text)
        capped = len(rows) > query.limit
        rows = rows[:query.limit][::-1]
        # InfluxDB's JSON writes large floats as integer literals.
        return [{"t": iso(row["time"] / 1e9), "v": row["v"] if row["v"] is None or query.fn == "count"
                 else float(row["v"])} for row in rows], capped

    def events(self, measurement: str, limit: int) -> list[dict]:
        text = f"SELECT * FROM {lp.identifier(measurement)} ORDER BY time DESC LIMIT {int(limit)}"
        rows = self._query(text)
        return [{**{k: v for k, v in row.items() if v is not None and k != "time"},
                 "time": iso(row["time"] / 1e9)} for row in rows]
