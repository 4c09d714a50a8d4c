"""Bengaluru Heart System: `create_app` is the single composition root.

It builds the adapters, then the services, then registers the blueprints and
Socket.IO namespaces. Nothing connects at import time; background tasks start
only when `app.extensions["bhs"].start()` is called (run.py does).
"""
from __future__ import annotations

import logging
import time

from flask import Flask
from flask_socketio import SocketIO

from app import api
from app.adapters.memory_history import MemoryHistory
from app.api import errors
from app.api.headers import register_headers
from app.api.limits import install_limits
from app.api.metrics import registry_for
from app.config import Settings
from app.logs import LogRing
from app.realtime.broadcaster import Broadcaster
from app.realtime.control import ControlNamespace
from app.realtime.live import LiveNamespace
from app.runtime import Runtime
from app.security import Credentials, kept_token
from app.services.alerts import AlertBook
from app.services.commands import CommandPublisher, MemoryCommands
from app.services.controls import ControlService
from app.services.device_commands import DeviceCommandRouter
from app.services.data_quality import DataQuality
from app.services.demo_reset import DemoReset
from app.services.engine import DecisionEngine
from app.services.forecast import DemandForecaster
from app.services.fusion import SensorIndex
from app.services.history import HistoryRepository, parse_retention
from app.services.decisions import DecisionBook
from app.services.leak_watch import LeakWatch
from app.services.leaks import LeakDetector
from app.services.narration import Narrator
from app.services.plan_inputs import PlanInputsBuilder
from app.services.routing import RoutingModel, horizon_within
from app.services.scheduler import ReplanScheduler
from app.services.tariff import Tariff
from app.services.metrics import Metrics
from app.services.monitor import Monitor
from app.services.network import Network
from app.services.pipeline import IngestPipeline
from app.services.simulation import NetworkSimulation
from app.services.simulator import Simulator
from app.services.store import DataStore
from app.services.thresholds import ThresholdMonitor
from app.services.weather_effect import WeatherEffect
from app.services.wqi import WqiStations

logger = logging.getLogger(__name__)
# The generated operator token's file in the instance folder (when OPERATOR_TOKENS is unset).
OPERATOR_TOKEN_FILE = "operator_token"


def _build_history(settings: Settings, spawn, sleep, on_failing, on_recovered) -> HistoryRepository:
    if not settings.influxdb_url:
        return MemoryHistory()
    from app.adapters.influx import InfluxHistory
    from app.adapters.spool import DiskSpool

    spool = DiskSpool(settings.instance_dir / "spool", settings.spool_max_bytes)
    return InfluxHistory(settings.influxdb_url, settings.influxdb_token, settings.influxdb_org,
                         settings.influxdb_bucket, spool, spawn, sleep,
                         batch_lines=settings.influx_batch_lines,
                         flush_interval_s=settings.influx_flush_ms / 1000,
                         gzip=settings.influx_gzip, retry_max_s=settings.history_retry_max_s,
                         alert_after_s=settings.history_alert_after_s,
                         raw_retention_s=parse_retention(settings.raw_retention),
                         rollup_retention_s=parse_retention(settings.rollup_retention),
                         on_failing=on_failing, on_recovered=on_recovered)


def _raise_history_alert(alerts: AlertBook, detail: dict) -> None:
    """`history_write_failing`: raised after HISTORY_ALERT_AFTER_S of held writes, cleared on success."""
    error = detail.get("last_error") or {}
    spool = detail.get("spool") or {}
    alerts.raise_("history", "history_write_failing", "critical",
                  f"History writes failing for {detail.get('failing_for_s')} s "
                  f"({error.get('status') or 'no answer'}: {error.get('message', '')[:120]}); "
                  f"{spool.get('points', 0)} points held in the spool",
                  node_id=None, sensor_id=None, metric=None, value=None, threshold=None)


def _offload(async_mode: str):
    """Run blocking C work (GDAL's raster reads) on a real OS thread, off the event loop."""
    if async_mode == "eventlet":
        from eventlet import tpool
        return tpool.execute
    if async_mode == "gevent":
        import gevent

        return lambda fn, *args: gevent.get_hub().threadpool.apply(fn, args)
    return lambda fn, *args: fn(*args)


def _build_sources(settings: Settings, pipeline: IngestPipeline, sensor_index: SensorIndex,
                   spawn, on_weather):
    """The external sources of SOURCES_FILE; None when it is unset (no fetching)."""
    if not settings.sources_file:
        return None
    from app.adapters.sources import SourceHttp, configured_sources
    from app.adapters.sources.scheduler import SourceScheduler

    sources = configured_sources(settings.sources_file, offload=_offload(settings.async_mode))
    http = SourceHttp(settings.source_connect_timeout_s, settings.source_read_timeout_s,
                      settings.source_retries, settings.source_backoff_s,
                      settings.source_retry_after_max_s)
    return SourceScheduler(
        sources, http, lambda items, provenance: pipeline.ingest(items, "sources", provenance=provenance),
        sensor_index.sensor_for, spawn, failures_to_pause=settings.source_failures_to_pause,
        max_pause_s=settings.source_max_pause_s, on_weather=on_weather)


def _credentials(settings: Settings) -> Credentials:
    operators = Settings.split(settings.operator_tokens)
    if not operators:
        # Generated once and kept in the instance folder, so restarts keep it;
        # printed only when made, so a fresh install can be operated. Control is never open.
        path = settings.instance_dir / OPERATOR_TOKEN_FILE
        token, made = kept_token(path)
        operators = [f"operator={token}"]
        if made:
            print(f"OPERATOR_TOKENS is unset; generated an operator token, kept in {path}: {token}",
                  flush=True)
        else:
            logger.info("OPERATOR_TOKENS is unset; using the operator token kept in %s", path)
    devices = Settings.split(settings.device_keys)
    if not devices:
        logger.warning("DEVICE_KEYS is unset: ingest is open to anyone who can reach this server")
    admins = Settings.split(settings.admin_tokens)
    if not admins:
        logger.warning("ADMIN_TOKENS is unset: the device registry is read-only (writes answer 403)")
    return Credentials(devices, operators, Settings.split(settings.viewer_tokens), admins)


def _build_devices(settings: Settings, network: Network, pipeline: IngestPipeline, mqtt_link,
                   broadcast, spawn, sleep):
    """The device registry, its commands and key-value telemetry, wired to MQTT when there is a broker."""
    from app.adapters.sqlite_registry import SqliteRegistry
    from app.services.device_commands import CommandBook
    from app.services.device_registry import DeviceRegistry
    from app.services.telemetry import TelemetryService

    repository = SqliteRegistry(settings.devices_db_path)
    if settings.redis_url:   # a device registered on one instance works on all
        from app.services.cluster.shared_devices import SharingRepository
        repository = SharingRepository(repository)
    registry = DeviceRegistry(repository, network, default_timeout_s=settings.command_timeout_s,
                              offline_after_s=settings.device_offline_after_s,
                              on_change=lambda view: broadcast("device_update", view),
                              spawn=spawn, sleep=sleep)
    book = CommandBook(repository, registry, on_change=lambda command: broadcast("command_update", command),
                       expiry_s=settings.command_expiry_s, spawn=spawn, sleep=sleep)
    registry.on_back = book.resend   # a device heard from again gets its open commands
    telemetry = TelemetryService(registry, pipeline.ingest, time.time, settings.max_clock_skew_s)
    if mqtt_link is not None:
        from urllib.parse import unquote, urlparse

        from app.adapters.mqtt_devices import MqttDevices
        MqttDevices(mqtt_link, registry, telemetry, book, settings.telemetry_max_bytes)
        if settings.mqtt_dynsec:
            from app.adapters.dynsec import DynamicSecurity
            username = urlparse(settings.mqtt_url).username
            registry.accounts = DynamicSecurity(mqtt_link, unquote(username) if username else None,
                                                spawn, sleep, prefix=settings.mqtt_topic_prefix)
    return registry, book, telemetry


def _alert_event(history: HistoryRepository):
    """Each alert transition as an `alert` point: enough to rebuild open alerts at start-up."""
    def record(alert: dict) -> None:
        history.write_event(
            "alert", {"condition": alert["condition"], "severity": alert["severity"],
                      "state": alert["state"], "node_id": alert.get("node_id") or ""},
            {"id": alert["id"], "subject": alert["subject"], "message": alert["message"],
             "sensor_id": alert.get("sensor_id") or "", "metric": alert.get("metric") or "",
             "value": float(alert["value"]) if alert.get("value") is not None else None,
             "threshold": float(alert["threshold"]) if alert.get("threshold") is not None else None,
             "raised_at": alert["raised_at"], "acknowledged_by": alert.get("acknowledged_by") or "",
             # ISA-18.2 state and who did what: the alarm audit trail.
             "alarm_state": alert.get("alarm_state", ""), "action": alert.get("last_action", ""),
             "by": alert.get("last_action_by", ""), "shelved_until": alert.get("shelved_until") or ""},
            time.time())
    return record


def _presence_alerts(alerts: AlertBook):
    """An unexpected `offline` (a device's last will) raises an alert; `online` clears it."""
    def on_presence(device_id: str, state: str, news: bool) -> None:
        if state == "offline" and news:
            alerts.raise_(device_id, "device_offline", "warning", f"Device {device_id} went offline",
                          node_id=None, sensor_id=None, metric="status", value=0.0, threshold=None,
                          device_id=device_id)
        elif state == "online":
            alerts.clear(device_id, "device_offline")
    return on_presence


def _build_cluster(settings, *, network, store, history, broadcaster, alerts, controls, engine,
                   registry, views, analysis, leader_work, mqtt_link, spawn, sleep):
    """Cluster mode: replicate accepted batches and operator state; the leader analyses and plans."""
    from app.adapters.redis_cluster import build_cluster
    from app.services.cluster.backfill import latest_from_history
    from app.services.cluster.leader_only import LeaderOnly, leader_only
    from app.services.cluster.shared_state import SharedState
    from app.services.routing import RoutingPlan

    def leading() -> bool:
        return cluster.leadership.is_leader

    gated = [leader_only(hook, leading) for hook in analysis]

    def apply(records: list[dict], origin: str) -> None:
        """A batch another instance accepted: into the live store; analysed by the leader."""
        store.put_many(records)
        for hook in (*views, *gated):
            hook(records)

    def fill_from_history() -> int:
        """Registered sensors the trimmed stream no longer covers: their last reading."""
        missing = [sid for sid in network.sensors if store.latest(sid) is None]
        records = latest_from_history(history, missing, network.defaults, time.time())
        if records:
            store.put_many(records)
        return len(records)

    def adopt_plan(body: dict) -> None:
        store.routing = body["view"]

    from app.services.cluster.shared_devices import device_adopters
    shared = SharedState({"alert": alerts.adopt, "control": controls.adopt, "plan": adopt_plan,
                          "decisions": store.add_decisions,
                          **device_adopters(registry.repository, registry)})
    registry.repository.share = shared.share
    alerts.listeners.append(lambda alarm: shared.share("alert", alarm))
    controls.listeners.append(lambda control: shared.share("control", control))
    engine_broadcast = engine.broadcast

    def engine_sharing(event: str, payload) -> None:
        """The leader's plan and decisions go to the other instances too."""
        engine_broadcast(event, payload)
        if event == "routing_update":
            shared.share_plan(payload, engine.plan)
        elif event == "decision":
            shared.share("decisions", [payload])
    engine.broadcast = engine_sharing

    cluster = build_cluster(settings, apply=apply, rewrite_history=history.write_readings,
                            spawn=spawn, sleep=sleep, local_rooms=broadcaster.local_rooms,
                            shared=shared, fill_from_history=fill_from_history)
    broadcaster.remote_rooms = cluster.rooms.nodes
    followers = [LeaderOnly(component, spawn, sleep) for component in leader_work]

    def on_leadership(leading_now: bool) -> None:
        plan = (shared.latest_plan or {}).get("plan")
        if leading_now and engine.plan is None and plan:
            engine.plan = RoutingPlan.from_dict(plan)   # continue from the last leader's plan
        for follower in followers:
            follower.follow(leading_now)
    cluster.leadership.on_change = on_leadership
    if mqtt_link is not None:
        cluster.add_check("MQTT session drained", mqtt_link.drained)
    return cluster, followers, [cluster.replicator.publish, *gated]


def _build_engine(settings: Settings, network: Network, store: DataStore, controls: ControlService,
                  alerts: AlertBook, history: HistoryRepository, forecaster: DemandForecaster,
                  broadcast, spawn, sleep) -> DecisionEngine:
    """The decision engine from its parts (see app/services/engine.py)."""
    zones = [z.id for z in network.of_kind("zone")]
    leaks = LeakWatch(network, alerts, LeakDetector(
        zones, settings.leak_excess_ratio, settings.leak_pressure_drop_ratio,
        settings.leak_night_excess_ratio, settings.local_utc_offset_h))
    scheduler = ReplanScheduler(network, lambda why: None, spawn, sleep,
                                interval_s=settings.routing_interval_s, debounce_s=settings.routing_debounce_s,
                                demand_trigger=settings.routing_demand_trigger)
    horizon = horizon_within(network, settings.plan_horizon_h, settings.plan_max_columns)
    if horizon < settings.plan_horizon_h:
        logger.warning("network of %d links: planning %d hourly steps, not PLAN_HORIZON_H=%d, to stay "
                       "within PLAN_MAX_COLUMNS=%d", len(network.links), horizon, settings.plan_horizon_h,
                       settings.plan_max_columns)
    engine = DecisionEngine(
        network, store, RoutingModel(network, horizon=horizon),
        PlanInputsBuilder(network, store, controls, alerts, leaks, forecaster, Tariff.parse(settings.tariff),
                          settings.local_utc_offset_h, time.time),
        Narrator(network, settings.decision_deadband), scheduler, leaks,
        # Through the engine's broadcast, so whatever wraps it (cluster sharing) sees decisions too.
        DecisionBook(store, history, controls, lambda event, payload: engine.broadcast(event, payload)),
        broadcast)
    alerts.listeners.append(engine.on_alert)
    controls.listeners.append(engine.on_control)
    return engine


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False

    socketio = SocketIO(app, async_mode=settings.async_mode, json=None,
                        message_queue=settings.message_queue,
                        # None: same-origin only, unless CORS_ORIGINS lists more.
                        cors_allowed_origins=Settings.split(settings.cors_origins) or None)
    spawn, sleep = socketio.start_background_task, socketio.sleep

    # Adapters.
    network = Network.load(settings.network_file)
    # The alert book is built after history; these look it up when called.
    history = _build_history(settings, spawn, sleep,
                             on_failing=lambda detail: _raise_history_alert(alerts, detail),
                             on_recovered=lambda detail: alerts.clear("history", "history_write_failing"))

    # Services.
    metrics = Metrics()
    store = DataStore(settings.max_sensors, settings.recent_points,
                      fusion_window_s=settings.fusion_window_s)
    broadcaster = Broadcaster(
        socketio, "/live",
        interval_s=settings.broadcast_interval_ms / 1000,
        minor_interval_s=settings.minor_interval_ms / 1000,
        deadband=network.deadband,
        on_frame=lambda size: metrics.add("frames"),
        leading_edge=settings.broadcast_leading_edge)
    broadcast = broadcaster.emit
    alerts = AlertBook(broadcast, _alert_event(history),
                       schedule=lambda delay, run: spawn(lambda: (sleep(delay), run())))
    pipeline = IngestPipeline(store, history, broadcaster.publish, metrics, registry=network,
                              max_clock_skew_s=settings.max_clock_skew_s)
    mqtt_link = None
    if settings.mqtt_url:
        from app.adapters.mqtt import MqttLink
        mqtt_link = MqttLink(settings.mqtt_url, settings.mqtt_topic_prefix, settings.mqtt_session_id,
                             pipeline.ingest, metrics, spawn, sleep, settings.max_body_bytes,
                             on_presence=_presence_alerts(alerts),
                             share_group=settings.mqtt_share_group if settings.redis_url else None)
    registry, device_commands, telemetry = _build_devices(settings, network, pipeline, mqtt_link,
                                                          broadcast, spawn, sleep)
    # A control on a target a registered device drives becomes that device's command.
    commands: CommandPublisher = DeviceCommandRouter(mqtt_link or MemoryCommands(), registry,
                                                     device_commands)
    controls = ControlService(network, history, commands, alerts, broadcast,
                              mode=settings.operating_mode)
    zones = [z.id for z in network.of_kind("zone")]
    # Weather hours from the sources (observed and forecast) as demand covariates.
    weather_effect = WeatherEffect()
    forecaster = DemandForecaster(
        zones, {s.id: s.node for s in network.sensors.values()
                if s.metric == "flow" and s.node in zones},
        on_update=lambda view: broadcast("prediction_update", view),
        base_demand={z.id: z.demand for z in network.of_kind("zone") if z.demand}, weather=weather_effect,
        utc_offset_h=settings.local_utc_offset_h)
    engine = _build_engine(settings, network, store, controls, alerts, history, forecaster,
                           broadcast, spawn, sleep)
    demo_reset = DemoReset()
    demo_reset.register("sensors", lambda _: store.forget(lambda sid: sid in network.sensors))
    demo_reset.register("alerts", alerts.reset)
    demo_reset.register("decisions", lambda _: store.clear_decisions())
    controls.reset_demo = demo_reset.run
    thresholds = ThresholdMonitor(network, alerts, settings.alert_clear_after_s)
    pipeline.add_annotator(DataQuality().annotate)
    sensor_index = SensorIndex({(s.node, s.metric): s.id for s in network.sensors.values()})
    wqi_stations = WqiStations()
    # Live views every instance keeps, and analysis (only the leader's, in a cluster).
    views = [sensor_index.learn, wqi_stations.observe]
    analysis = [thresholds.observe, forecaster.observe_records, engine.observe]

    sources = _build_sources(settings, pipeline, sensor_index, spawn, on_weather=weather_effect.observe_weather)

    simulator = None
    if network.sensors:
        simulation = NetworkSimulation(network, seed=settings.simulator_seed or 0,
                                       start=time.time(), speed=settings.simulator_speed,
                                       events_per_hour=settings.simulator_events_per_hour,
                                       utc_offset_h=settings.local_utc_offset_h)
        simulator = Simulator(simulation, lambda items: pipeline.ingest(items, "simulator"),
                              spawn=spawn, sleep=sleep, autostart=settings.simulator_on)

    logs = LogRing()
    logging.getLogger().addHandler(logs)
    runtime = Runtime(settings=settings, store=store, history=history, pipeline=pipeline,
                      broadcaster=broadcaster, metrics=metrics, tokens=_credentials(settings),
                      network=network, simulator=simulator, controls=controls, alerts=alerts,
                      engine=engine, commands=commands, mqtt=mqtt_link, forecaster=forecaster,
                      logs=logs, wqi_stations=wqi_stations, sources=sources, devices=registry,
                      device_commands=device_commands, telemetry=telemetry)
    store.stale_after = runtime.stale_after
    runtime.prometheus = registry_for(runtime)
    monitor = Monitor(network, store, alerts, runtime.health, broadcast, spawn, sleep)
    analysis.append(monitor.observe)
    leader_work = [engine, monitor]
    cluster = None
    if settings.redis_url:
        cluster, leader_work, analysis = _build_cluster(
            settings, network=network, store=store, history=history, broadcaster=broadcaster, alerts=alerts,
            controls=controls, engine=engine, registry=registry, views=views, analysis=analysis,
            leader_work=[*leader_work, *(c for c in (sources, simulator) if c is not None)],
            mqtt_link=mqtt_link, spawn=spawn, sleep=sleep)
        sources = simulator = None   # started and stopped with the lease now
        runtime.cluster = cluster
    for hook in (*views, *analysis):
        pipeline.add_hook(hook)
    runtime.components = [c for c in (registry, device_commands, history, broadcaster, cluster,
                                      *leader_work, mqtt_link, simulator, sources) if c is not None]
    app.extensions["bhs"] = runtime

    # Entry points.
    errors.register_error_handlers(app)
    register_headers(app, Settings.split(settings.cors_origins))
    install_limits(app, settings.limiter_storage, [
        (api.ingest.bp, settings.ingest_rate_limit, runtime.tokens.devices),
        (api.control.bp, settings.control_rate_limit, runtime.tokens.operators),
        (api.simulation.bp, settings.control_rate_limit, runtime.tokens.operators),
        (api.alerts.bp, settings.control_rate_limit, runtime.tokens.operators),
        (api.sources.bp, settings.control_rate_limit, runtime.tokens.operators)])
    for module in (api.ingest, api.read, api.ready, api.alerts, api.control, api.simulation,
                   api.dashboard, api.metrics, api.openapi, api.sources, api.devices, api.device_api):
        app.register_blueprint(module.bp)
    api.openapi.spec.register(app)
    socketio.on_namespace(LiveNamespace("/live", store, broadcaster, runtime.snapshot,
                                        runtime.tokens.viewers))
    socketio.on_namespace(ControlNamespace("/control", controls, runtime.tokens.operators))
    return app
