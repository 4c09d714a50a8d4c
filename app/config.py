"""Settings, read from the environment and `.env` (see `.env.example`).

Every variable of the contract is here, plus a few tunables of our own. Tests
build a `Settings(...)` directly and pass it to `create_app`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.models import MAX_FUTURE_S

BUNDLED_NETWORK = Path(__file__).parent / "data" / "bengaluru.json"


class Settings(BaseSettings):
    # Empty values (`SIMULATOR=` in a copied .env.example) mean "unset".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    # Listen address and server mode.
    host: str = "0.0.0.0"
    port: int = 5000
    async_mode: Literal["eventlet", "gevent", "threading"] = "eventlet"
    # eventlet's WSGI server takes 1024 connections by default; past that even
    # plain HTTP hangs (STACK-NOTES), so we raise it for many /live clients.
    max_connections: int = 4096
    log_level: str = "INFO"

    # History store: embedded in memory unless INFLUXDB_URL is set.
    influxdb_url: str | None = None
    influxdb_token: str = ""
    influxdb_org: str = ""
    influxdb_bucket: str = "water"
    instance_dir: Path = Path("instance")
    # Lines per write request, and how long a partial batch may wait (ms):
    # 5000 lines is about 0.5 MB before gzip, well under InfluxDB's limits.
    influx_batch_lines: int = 5000
    influx_flush_ms: int = 100
    # gzip cuts write bytes about 10x but costs ~2 us of CPU per point at the
    # client's level 9, which halves write throughput on 2 cores: worth it
    # only over a slow link to the database.
    influx_gzip: bool = False
    # Disk spool for history that could not be written; oldest dropped past this.
    spool_max_bytes: int = 512 * 1024 * 1024
    # Held writes are retried with capped, jittered exponential back-off up to
    # this many seconds between attempts (a store's Retry-After wins).
    history_retry_max_s: float = 30.0
    # Seconds of failing writes before the `history_write_failing` alert.
    history_alert_after_s: float = 60.0
    # How long InfluxDB keeps raw points and the 1m/1h/1d rollups, as InfluxDB
    # writes durations (`90d`, `104w`, `0` for forever).
    raw_retention: str = "90d"
    rollup_retention: str = "104w"
    # Readings stamped more than this many seconds ahead of our clock get a 422.
    max_clock_skew_s: float = MAX_FUTURE_S

    # MQTT.
    mqtt_url: str | None = None
    mqtt_topic_prefix: str = "water"
    # Stable, so the broker keeps our persistent session across restarts. Give
    # each instance its own when running several.
    mqtt_client_id: str = "bhs-server"

    # Credentials: comma-separated; a value may be given as `sha256:<hex>`.
    device_keys: str = ""
    operator_tokens: str = ""
    viewer_tokens: str = ""
    # Admin role: the device registry (and everything an operator may do).
    # Unset: registry writes answer 403.
    admin_tokens: str = ""
    # Browser origins allowed to call the API and /live; none but our own by default.
    cors_origins: str = ""
    # Rate limits (flask-limiter syntax) per device key / operator token, or per
    # IP without one. Generous enough for a fleet behind one gateway address.
    ingest_rate_limit: str = "5000 per second"
    control_rate_limit: str = "20 per second"
    # Shared limiter storage for several instances, e.g. redis://host:6379.
    ratelimit_storage_uri: str = "memory://"

    # Limits on what senders can make us hold.
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch: int = 5000
    # Distinct sensors the store will track: bounds memory whatever senders do.
    max_sensors: int = 20_000
    # Recent points kept per sensor in memory (the `recent` of /api/sensors/<id>).
    recent_points: int = 120
    # A reading older than this many seconds is shown as stale.
    stale_after_s: float = 300.0

    # Live broadcasting.
    # 25, not the contract's first 50: at a steady rate every reading waits up
    # to one interval for its frame, so 50 puts p99 over 50 ms by construction;
    # 25 costs no measurable CPU per reading at 50 clients (README, Benchmarks).
    broadcast_interval_ms: int = 25
    # Send the first change after a quiet interval at once (true), or let every
    # frame wait a full interval (false: a plain tick, for comparison).
    broadcast_leading_edge: bool = True
    minor_interval_ms: int = 1000
    # Shared Socket.IO message queue (e.g. redis://...) for several instances.
    socketio_message_queue: str | None = None

    # Cluster mode: with REDIS_URL set, instances share a stream of accepted
    # readings, a leader lease, operator state and the Socket.IO message queue.
    redis_url: str | None = None
    # This instance's name in the cluster (health, leader, its MQTT client id).
    # Stable across restarts; unset: <hostname>-<port>.
    instance_id: str | None = None
    # A dead leader is replaced within this many seconds.
    leader_lease_s: float = 10.0
    # Batches kept in the shared stream (XADD MAXLEN ~): a restarted instance
    # rebuilds its live state from them, from history beyond them.
    stream_maxlen: int = 100_000
    # Key prefix in Redis, so several systems can share one Redis.
    redis_prefix: str = "bhs"
    # MQTT shared-subscription group ($share/<group>/...) of the instances.
    mqtt_share_group: str = "bhs"

    # Network model and the simulator.
    network_file: Path = BUNDLED_NETWORK
    simulator: Literal["on", "off"] | None = None
    simulator_seed: int | None = None
    # Simulated seconds per real second; 1 is real time. Above 1 the whole
    # product runs on the simulated clock (app/domain/clock.py), not only the simulator.
    simulator_speed: float = Field(1.0, gt=0)
    # Random events (leaks, surges ...) per simulated hour; 0 for none.
    simulator_events_per_hour: float = 0.25

    # Device registry (SQLite); relative paths are under instance_dir.
    devices_db: Path = Path("devices.sqlite3")
    # `on`: the server manages each registered device's MQTT login and ACL in
    # Mosquitto's dynamic-security plugin over $CONTROL (MQTT_URL's user must
    # be a dynsec admin).
    mqtt_dynsec: bool = False
    # Largest key-value telemetry body (413 past it): a device posts small
    # documents; a bigger one is a bug or an attack, not telemetry.
    telemetry_max_bytes: int = 64 * 1024
    # A device is shown offline after this long without telemetry (s).
    device_offline_after_s: float = 120.0
    # A command times out this long after it was sent without an outcome
    # (devices may set their own), and expires if still queued this long.
    command_timeout_s: float = 30.0
    command_expiry_s: float = 24 * 3600.0

    # Decision engine. `manual`: it recommends and operators act; `auto`: its
    # decisions are sent to the devices as commands.
    operating_mode: Literal["auto", "manual"] = "manual"
    routing_interval_s: float = 30.0
    routing_debounce_s: float = 1.0
    # Relative change of a zone's demand that makes the engine re-plan.
    routing_demand_trigger: float = 0.05
    # Receding-horizon plan: hourly steps planned at once (only the first is applied).
    plan_horizon_h: int = Field(24, ge=1, le=168)
    # Largest LP (variables) planned at once; a bigger network gets a shorter horizon
    # so a re-plan stays well under a second (24 h of the bundled network: ~1,900).
    plan_max_columns: int = 60_000
    # Largest LP (variables) a control's preview solves over the plan's whole horizon; past
    # it the preview solves one step, so it stays milliseconds (24 h of the bundled network: ~2,000).
    what_if_max_columns: int = Field(5_000, ge=1)
    # Time-of-day electricity tariff (JSON, see app/services/tariff.py); unset: the
    # BESCOM-like table (Rs 7/kWh, -1 22:00-06:00, +1 06:00-10:00 and 18:00-22:00).
    tariff: str | None = None
    # A plan change is a decision only past this share of a link's capacity
    # (or a start/stop, a shortfall appearing or clearing, an isolation, a leak).
    decision_deadband: float = 0.10

    # External sources (JSON, shape in the README); unset: no external fetching.
    sources_file: Path | None = None
    # Readings of one station and metric observed within this many seconds
    # compete for the live value; the highest-priority fresh source wins.
    fusion_window_s: float = 900.0
    # The sources' HTTP client: timeouts (s), retries of connection errors, 429
    # and 5xx with exponential back-off (s), and the longest Retry-After obeyed
    # (s), so one server cannot hold its source for hours.
    source_connect_timeout_s: float = 5.0
    source_read_timeout_s: float = 20.0
    source_retries: int = 2
    source_backoff_s: float = 0.5
    source_retry_after_max_s: float = 60.0
    # Failures in a row that pause a source, and the longest pause (6 h).
    source_failures_to_pause: int = 3
    source_max_pause_s: float = 21_600.0

    # An alert clears once its value has stayed back in range this long (s).
    alert_clear_after_s: float = 60.0

    # Leak detection (see app/services/leaks.py): a zone's inflow above what the
    # city-wide move implies by this fraction ...
    leak_excess_ratio: float = 0.02
    # ... together with a pressure drop its own flow does not explain, as a
    # fraction of its usual pressure (0.05 of ~22 m is about 1.1 m) ...
    leak_pressure_drop_ratio: float = 0.05
    # ... or a minimum night flow this fraction above the zone's usual night share.
    leak_night_excess_ratio: float = 0.10
    # Offset of the network's local time from UTC (hours): tariff periods, the
    # night-flow window and the simulator's demand curve. India: UTC+5:30.
    local_utc_offset_h: float = 5.5

    @property
    def devices_db_path(self) -> Path:
        return self.devices_db if self.devices_db.is_absolute() else self.instance_dir / self.devices_db

    @property
    def simulator_on(self) -> bool:
        if self.simulator is None:
            return not self.mqtt_url
        return self.simulator == "on"

    @property
    def cluster_id(self) -> str:
        """This instance's name: INSTANCE_ID, else <hostname>-<port>."""
        import socket
        return self.instance_id or f"{socket.gethostname()}-{self.port}"

    @property
    def message_queue(self) -> str | None:
        """The Socket.IO message queue: its own setting, else Redis in cluster mode."""
        return self.socketio_message_queue or self.redis_url

    @property
    def limiter_storage(self) -> str:
        """Rate-limit counters: their own setting, else Redis in cluster mode."""
        if self.ratelimit_storage_uri == "memory://" and self.redis_url:
            return self.redis_url
        return self.ratelimit_storage_uri

    @property
    def mqtt_session_id(self) -> str:
        """One persistent MQTT session per instance (the broker keys it on the client id)."""
        if self.redis_url and self.mqtt_client_id == "bhs-server":
            return f"bhs-{self.cluster_id}"
        return self.mqtt_client_id

    @staticmethod
    def split(value: str) -> list[str]:
        return [part.strip() for part in value.split(",") if part.strip()]


