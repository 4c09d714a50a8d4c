"""Retention and rollups set up in InfluxDB itself, idempotently, touching only what is ours.

Raw points stay where they always were (the configured bucket; on 1.x its
default retention policy), kept RAW_RETENTION. Rollups at 1 min, 1 h and 1 d
keep mean, min, max, count and last of `value` per series, kept
ROLLUP_RETENTION:

- InfluxDB 1.x (1.8 serves the v2 write API beside it): retention policies
  `bhs_1m`, `bhs_1h`, `bhs_1d` in the same database and continuous queries
  `bhs_rollup_1m` ... that resample recent windows;
- InfluxDB 2.x: buckets `<bucket>_1m` ... with retention rules, tasks
  `bhs_rollup_1m` ... (Flux `aggregateWindow`), and DBRP mappings so the
  InfluxQL reads find them as `<bucket>.bhs_1m`.

Each start compares what is there with what the settings ask for and only
creates or alters what differs; nothing a user made is dropped or changed
(only our own `bhs_*` objects and the configured bucket's retention).
Points that arrive later than a continuous query's window (back-fills) are
rolled up by `backfill_statements`, which recompute just their buckets.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from app.adapters import influx_text as lp
from app.domain.clock import iso
from app.services.history import AGGREGATES, RESOLUTIONS, ROLLUPS, UNIT_SECONDS

logger = logging.getLogger(__name__)

READING = "sensor_reading"
# Every aggregate a history query may ask for is kept in the rollups.
ROLLUP_FIELDS = AGGREGATES


@dataclass(frozen=True)
class Resample:
    """How often a continuous query runs and how far back each run recomputes."""
    every: str
    window: str
    window_s: float


# Each run recomputes the recent window, so the current (partial) bucket is
# refreshed and points a little late are rolled up without a back-fill.
RESAMPLE = {"1m": Resample("1m", "5m", 300), "1h": Resample("10m", "2h", 7200),
            "1d": Resample("1h", "2d", 172800)}


def schema_kind(version: str) -> str:
    """`2.x` for InfluxDB 2 (`v2.7.4`, `2.7.4`); `1.x` for 1.x, 1.8's v2 compatibility and servers
    that do not say (their InfluxQL answers tell; a 2.x without the header would fail setup loudly)."""
    return "2.x" if version.strip().lstrip("v").startswith("2") else "1.x"


def rollup_rp(resolution: str) -> str:
    return f"bhs_{resolution}"


def cq_name(resolution: str) -> str:
    return f"bhs_rollup_{resolution}"


def influxql_duration(seconds: float | None) -> str:
    """A retention as InfluxQL writes it: INF for forever, else whole hours/days/weeks."""
    if seconds is None:
        return "INF"
    for unit in ("w", "d", "h", "m"):
        size = UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)")
_GO_UNIT = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration_s(text: str) -> float | None:
    """`2160h0m0s` (what SHOW RETENTION POLICIES says) in seconds; `0s` is forever (None)."""
    seconds = sum(float(n) * _GO_UNIT[u] for n, u in _GO_DURATION.findall(text or ""))
    return None if seconds == 0 else seconds


def select_rollup(resolution: str) -> str:
    value = lp.identifier("value")
    return ", ".join(f"{fn}({value}) AS {lp.identifier(fn)}" for fn in ROLLUP_FIELDS)


def continuous_query(db: str, raw_rp: str, resolution: str) -> str:
    resample = RESAMPLE[resolution]
    d = lp.identifier(db)
    return (f"CREATE CONTINUOUS QUERY {lp.identifier(cq_name(resolution))} ON {d} "
            f"RESAMPLE EVERY {resample.every} FOR {resample.window} BEGIN "
            f"SELECT {select_rollup(resolution)} "
            f"INTO {d}.{lp.identifier(rollup_rp(resolution))}.{lp.identifier(READING)} "
            f"FROM {d}.{lp.identifier(raw_rp)}.{lp.identifier(READING)} "
            f"GROUP BY time({resolution}), * END")


def _normal(statement: str) -> str:
    """InfluxDB echoes a continuous query with its own quoting: compare without quotes or case."""
    return re.sub(r"\s+", " ", statement.replace('"', "")).strip().lower()


def backfill_statements(db: str, raw_rp: str, sensor_id: str, start: float, stop: float,
                        resolutions=ROLLUPS) -> list[str]:
    """Recompute the rollup buckets of one sensor that [start, stop] touches (1.x)."""
    d = lp.identifier(db)
    statements = []
    for resolution in resolutions:
        width = RESOLUTIONS[resolution]
        first = math.floor(start / width) * width
        last = (math.floor(stop / width) + 1) * width
        statements.append(
            f"SELECT {select_rollup(resolution)} "
            f"INTO {d}.{lp.identifier(rollup_rp(resolution))}.{lp.identifier(READING)} "
            f"FROM {d}.{lp.identifier(raw_rp)}.{lp.identifier(READING)} "
            f"WHERE {lp.identifier('sensor_id')} = {lp.string_literal(sensor_id)} "
            f"AND time >= {int(first * 1e9)} AND time < {int(last * 1e9)} "
            f"GROUP BY time({resolution}), *")
    return statements


class InfluxSchema1x:
    """Retention policies and continuous queries on InfluxDB 1.x, over InfluxQL."""

    kind = "1.x"

    def __init__(self, query, db: str, raw_retention_s: float | None, rollup_retention_s: float | None):
        self.query = query          # (statement) -> rows, raising on errors
        self.db = db
        self.raw_retention_s = raw_retention_s
        self.rollup_retention_s = rollup_retention_s
        self.raw_rp = "autogen"

    def ensure(self) -> list[str]:
        """Create or alter what differs from the settings; returns what was changed."""
        changes: list[str] = []
        d = lp.identifier(self.db)
        databases = {row["name"] for row in self.query("SHOW DATABASES")}
        if self.db not in databases:
            self.query(f"CREATE DATABASE {d}")
            changes.append(f"created database {self.db}")
        policies = {row["name"]: row for row in self.query(f"SHOW RETENTION POLICIES ON {d}")}
        default = next((name for name, row in policies.items() if row.get("default")), None)
        if default is None:
            default = "autogen"
            self.query(f"CREATE RETENTION POLICY {lp.identifier(default)} ON {d} DURATION "
                       f"{influxql_duration(self.raw_retention_s)} REPLICATION 1 DEFAULT")
            changes.append(f"created retention policy {default} ({influxql_duration(self.raw_retention_s)})")
        elif go_duration_s(policies[default]["duration"]) != self.raw_retention_s:
            self.query(f"ALTER RETENTION POLICY {lp.identifier(default)} ON {d} DURATION "
                       f"{influxql_duration(self.raw_retention_s)}")
            changes.append(f"raw retention of {default} set to {influxql_duration(self.raw_retention_s)}")
        self.raw_rp = default
        for resolution in ROLLUPS:
            name = rollup_rp(resolution)
            duration = influxql_duration(self.rollup_retention_s)
            if name not in policies:
                self.query(f"CREATE RETENTION POLICY {lp.identifier(name)} ON {d} DURATION {duration} REPLICATION 1")
                changes.append(f"created retention policy {name} ({duration})")
            elif go_duration_s(policies[name]["duration"]) != self.rollup_retention_s:
                self.query(f"ALTER RETENTION POLICY {lp.identifier(name)} ON {d} DURATION {duration}")
                changes.append(f"retention of {name} set to {duration}")
        existing = {row["name"]: row["query"] for row in self.query("SHOW CONTINUOUS QUERIES")
                    if row.get("_series") == self.db and "name" in row and "query" in row}
        for resolution in ROLLUPS:
            name, wanted = cq_name(resolution), continuous_query(self.db, default, resolution)
            if name in existing and _normal(existing[name]) == _normal(wanted):
                continue
            if name in existing:       # ours, but from other settings: replace it
                self.query(f"DROP CONTINUOUS QUERY {lp.identifier(name)} ON {d}")
            self.query(wanted)
            changes.append(f"{'replaced' if name in existing else 'created'} continuous query {name}")
        return changes

    def backfill(self, sensor_id: str, start: float, stop: float, resolutions=ROLLUPS) -> None:
        for statement in backfill_statements(self.db, self.raw_rp, sensor_id, start, stop, resolutions):
            self.query(statement)

    def source(self, resolution: str) -> str:
        """The FROM of a read at this resolution."""
        rp = self.raw_rp if resolution == "raw" else rollup_rp(resolution)
        return f"{lp.identifier(self.db)}.{lp.identifier(rp)}.{lp.identifier(READING)}"


def flux_task(bucket: str, org: str, resolution: str) -> str:
    """The Flux of a 2.x rollup task: every aggregate of the recent window into the rollup bucket."""
    resample = RESAMPLE[resolution]
    target = f"{bucket}_{resolution}"
    streams = []
    for fn in ROLLUP_FIELDS:
        streams.append(
            f'agg_{fn} = data |> aggregateWindow(every: {resolution}, fn: {fn}, createEmpty: false) '
            f'|> set(key: "_field", value: "{fn}")')
    names = ", ".join(f"agg_{fn}" for fn in ROLLUP_FIELDS)   # not `mean`...: those are Flux's
    return (f'option task = {{name: "{cq_name(resolution)}", every: {resample.every}}}\n'
            f'data = from(bucket: "{bucket}") |> range(start: -{resample.window}) '
            f'|> filter(fn: (r) => r._measurement == "{READING}" and r._field == "value")\n'
            + "\n".join(streams) + "\n"
            f'union(tables: [{names}]) |> to(bucket: "{target}", org: "{org}")\n')


class InfluxSchema2x:
    """Buckets, tasks and DBRP mappings on InfluxDB 2.x, through influxdb-client's APIs.

    Not exercised by the test suite: Debian ships only InfluxDB 1.x.
    """

    kind = "2.x"

    def __init__(self, client, org: str, bucket: str, raw_retention_s: float | None,
                 rollup_retention_s: float | None):
        self.client = client
        self.org = org
        self.bucket = bucket
        self.raw_retention_s = raw_retention_s
        self.rollup_retention_s = rollup_retention_s
        self.raw_rp = "autogen"

    def ensure(self) -> list[str]:
        from influxdb_client import BucketRetentionRules
        from influxdb_client.domain.dbrp_create import DBRPCreate
        from influxdb_client.service.dbr_ps_service import DBRPsService

        changes: list[str] = []
        buckets = self.client.buckets_api()
        org = next(o for o in self.client.organizations_api().find_organizations(org=self.org))

        def rules(seconds):
            return [BucketRetentionRules(type="expire", every_seconds=int(seconds or 0))]

        def ensure_bucket(name: str, seconds: float | None):
            found = buckets.find_bucket_by_name(name)
            if found is None:
                found = buckets.create_bucket(bucket_name=name, org_id=org.id, retention_rules=rules(seconds))
                changes.append(f"created bucket {name}")
            else:
                current = (found.retention_rules or [None])[0]
                if (getattr(current, "every_seconds", 0) or 0) != int(seconds or 0):
                    found.retention_rules = rules(seconds)
                    buckets.update_bucket(found)
                    changes.append(f"retention of bucket {name} set")
            return found

        ensure_bucket(self.bucket, self.raw_retention_s)
        dbrps = DBRPsService(self.client.api_client)
        mapped = {(m.database, m.retention_policy) for m in (dbrps.get_dbr_ps(org_id=org.id).content or [])}
        tasks = self.client.tasks_api()
        existing = {t.name: t for t in tasks.find_tasks(org_id=org.id)}
        for resolution in ROLLUPS:
            target = ensure_bucket(f"{self.bucket}_{resolution}", self.rollup_retention_s)
            if (self.bucket, rollup_rp(resolution)) not in mapped:
                dbrps.post_dbrp(DBRPCreate(org_id=org.id, bucket_id=target.id, database=self.bucket,
                                           retention_policy=rollup_rp(resolution), default=False))
                changes.append(f"mapped {self.bucket}/{rollup_rp(resolution)}")
            flux = flux_task(self.bucket, self.org, resolution)
            task = existing.get(cq_name(resolution))
            if task is None:
                tasks.create_task_every(cq_name(resolution), flux, RESAMPLE[resolution].every, org)
                changes.append(f"created task {cq_name(resolution)}")
            elif task.flux.strip() != flux.strip():
                task.flux = flux
                tasks.update_task(task)
                changes.append(f"updated task {cq_name(resolution)}")
        return changes

    def backfill(self, sensor_id: str, start: float, stop: float, resolutions=ROLLUPS) -> None:
        query_api = self.client.query_api()
        for resolution in resolutions:
            width = RESOLUTIONS[resolution]
            first = iso(math.floor(start / width) * width)
            last = iso((math.floor(stop / width) + 1) * width)
            flux = flux_task(self.bucket, self.org, resolution).split("\n", 1)[1].replace(
                f"range(start: -{RESAMPLE[resolution].window})", f"range(start: {first}, stop: {last})").replace(
                'r._field == "value")', f'r._field == "value" and r.sensor_id == "{_flux_string(sensor_id)}")')
            query_api.query(flux, org=self.org)

    def source(self, resolution: str) -> str:
        rp = "autogen" if resolution == "raw" else rollup_rp(resolution)
        return f"{lp.identifier(self.bucket)}.{lp.identifier(rp)}.{lp.identifier(READING)}"


def _flux_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
