"""The composition root: `bootstrap()` builds every adapter and service, once.

Each service gets its collaborators through its constructor; nothing reaches
into a global. The result is a small typed container (`Services`) that the
application factory hands to the blueprints and Socket.IO namespaces, and
whose `start()`/`stop()` bracket the background tasks. Tests build the same
graph, with fakes where a unit test wants them, by calling `bootstrap()`.

Time comes from one clock (app/domain/clock.py), made here and handed to
every service that reads it: the wall clock, or at SIMULATOR_SPEED > 1 the
simulated one, so a simulated day passes in minutes for all of them at once.
Devices and the cluster's leases keep the wall clock (`real`): they talk to
other processes in real seconds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from app import wire
from app.adapters.network_files import load_network
from app.bus import MessageBus
from app.config import Settings
from app.domain.clock import Clock, SystemClock, clock_for
from app.domain.events import CommandStateChanged, DeviceChanged, DeviceReturned, ForecastUpdated
from app.domain.records import Reading
from app.handlers import handlers_for
from app.logs import LogRing
from app.realtime.broadcaster import Broadcaster
from app.security import Credentials, kept_token
from app.services.alerts import AlertBook
from app.services.commands import CommandPublisher, MemoryCommands
from app.services.controls import ControlService
from app.services.data_quality import DataQuality
from app.services.demo_reset import DemoReset
from app.services.engine import DecisionEngine
from app.services.forecast import DemandForecaster
from app.services.fusion import SensorIndex
from app.services.history import HistoryRepository, parse_retention
from app.services.decisions import DecisionBook
from app.services.device_commands import DeviceCommandRouter
from app.services.leak_watch import LeakWatch
from app.services.leaks import LeakDetector
from app.services.narration import Narrator
from app.services.plan_inputs import PlanInputsBuilder
from app.services.routing import RoutingModel, horizon_within
from app.services.scheduler import ReplanScheduler
from app.services.tariff import Tariff
from app.services.weather_effect import WeatherEffect
from app.services.metrics import Metrics, ServicesCollector
from app.services.monitor import Monitor
from app.services.network import Network
from app.services.pipeline import IngestPipeline
from app.services.simulation import NetworkSimulation
from app.services.simulator import TICK_S, Simulator
from app.services.store import DataStore
from app.services.thresholds import ThresholdMonitor
from app.services.views import LiveViews
from app.services.what_if import WhatIf
from app.services.wqi import WqiStations

if TYPE_CHECKING:
    from app.adapters.mqtt import MqttLink
    from app.adapters.mqtt_devices import MqttDevices
    from app.adapters.sources.scheduler import SourceScheduler
    from app.services.cluster.node import ClusterNode
    from app.services.cluster.shared_state import SharedState
    from app.services.device_commands import CommandBook
    from app.services.device_registry import DeviceRegistry
    from app.services.telemetry import TelemetryService

logger = logging.getLogger(__name__)

# Alert transitions read back from history at start-up to rebuild open alerts.
ALERTS_REPLAYED = 5000
# The generated operator token's file in the instance folder (when OPERATOR_TOKENS is unset).
OPERATOR_TOKEN_FILE = "operator_token"


@dataclass
class Services:
    """Everything one app runs on. Built only by `bootstrap()`."""
    settings: Settings
    clock: Clock
    bus: MessageBus
    prometheus: CollectorRegistry
    tokens: Credentials
    network: Network
    history: HistoryRepository
    metrics: Metrics
    store: DataStore
    broadcaster: Broadcaster
    alerts: AlertBook
    pipeline: IngestPipeline
    commands: CommandPublisher
    controls: ControlService
    forecaster: DemandForecaster
    engine: DecisionEngine
    decisions: DecisionBook       # the engine's: operators apply and dismiss its decisions here
    thresholds: ThresholdMonitor
    sensor_index: SensorIndex
    wqi_stations: WqiStations
    monitor: Monitor
    views: LiveViews
    logs: LogRing
    mqtt: MqttLink | None = None
    simulator: Simulator | None = None
    sources: SourceScheduler | None = None    # when SOURCES_FILE is set
    cluster: ClusterNode | None = None        # when REDIS_URL is set
    devices: DeviceRegistry | None = None
    device_commands: CommandBook | None = None
    telemetry: TelemetryService | None = None
    mqtt_devices: MqttDevices | None = None   # registered devices' MQTT topics, with a broker
    shared: SharedState | None = None         # cluster: operator state shared by the instances
    what_if: WhatIf | None = None             # a control's consequence, previewed on the plan
    # Components that have start()/stop(), in start order.
    components: list = field(default_factory=list)

    def leading(self) -> bool:
        """Whether this instance does the analysis and planning (always, outside a cluster)."""
        return self.cluster is None or self.cluster.leadership.is_leader

    def readiness(self) -> tuple[bool, list[str]]:
        return self.views.readiness()

    def start(self) -> None:
        try:
            reopened = self.alerts.restore(self.history.events("alert", ALERTS_REPLAYED))
            if reopened:
                logger.info("reopened %d alert(s) recorded as open before the restart", reopened)
        except Exception as error:   # history down at start-up: start anyway
            logger.warning("could not rebuild open alerts from history: %s", error)
        for component in self.components:
            component.start()

    def stop(self) -> None:
        """Stop background work, then flush buffers. Safe to call once at exit."""
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception:
                logger.exception("stopping %s failed", type(component).__name__)


def build_history(settings: Settings, spawn, sleep, on_failing, on_recovered) -> HistoryRepository:
    if not settings.influxdb_url:
        from app.adapters.memory_history import MemoryHistory
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


def raise_history_alert(alerts: AlertBook, detail: dict) -> None:
    """`history_write_failing`: raised after HISTORY_ALERT_AFTER_S of held writes, cleared on success."""
    error = detail.get("last_error") or {}
    spool = detail.get("spool") or {}
    alerts.raise_("history", "history_write_failing", "critical",
                  f"History writes failing for {detail.get('failing_for_s')} s "
                  f"({error.get('status') or 'no answer'}: {error.get('message', '')[:120]}); "
                  f"{spool.get('points', 0)} points held in the spool",
                  node_id=None, sensor_id=None, metric=None, value=None, threshold=None)


def _offload(async_mode: str):
    """Run blocking C work (GDAL's raster reads, HiGHS's solve) on a real OS thread, off the event loop."""
    if async_mode == "eventlet":
        from eventlet import tpool
        return tpool.execute
    if async_mode == "gevent":
        import gevent

        return lambda fn, *args: gevent.get_hub().threadpool.apply(fn, args)
    return lambda fn, *args: fn(*args)


def build_sources(settings: Settings, pipeline: IngestPipeline, sensor_index: SensorIndex,
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


def build_cluster(settings: Settings, *, network: Network, store: DataStore,
                  history: HistoryRepository, broadcaster: Broadcaster, alerts: AlertBook,
                  controls: ControlService, engine: DecisionEngine, registry, publish, leader_work: list,
                  mqtt_link, spawn, sleep, clock):
    """Cluster mode: replicate accepted batches and operator state; the leader analyses and plans.

    Returns the node, the shared operator state, and the leader-only wrappers
    of `leader_work` (they replace the components in the start order).
    """
    from app.adapters.redis_cluster import build_cluster as redis_cluster
    from app.domain.events import ReadingsReplicated
    from app.services.cluster.backfill import latest_from_history
    from app.services.cluster.leader_only import LeaderOnly
    from app.services.cluster.shared_state import SharedState
    from app.services.routing import RoutingPlan

    def apply(records: list[Reading], origin: str) -> None:
        """A batch another instance accepted: into the live store, then its handlers."""
        store.put_many(records)
        publish(ReadingsReplicated(records, origin))

    def fill_from_history() -> int:
        """Registered sensors the trimmed stream no longer covers: their last reading."""
        missing = [sid for sid in network.sensors if store.latest(sid) is None]
        records = latest_from_history(history, missing, network.defaults, clock())
        if records:
            store.put_many(records)
        return len(records)

    def adopt_plan(body: dict) -> None:
        store.routing = wire.routing_record(body["view"])

    from app.services.cluster.shared_devices import device_adopters
    shared = SharedState({"alert": alerts.adopt, "control": controls.adopt, "plan": adopt_plan,
                          "decisions": lambda views: store.add_decisions(map(wire.decision_record, views)),
                          **device_adopters(registry.repository, registry)})
    registry.repository.share = shared.share
    cluster = redis_cluster(settings, apply=apply, rewrite_history=history.write_readings,
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
    return cluster, shared, followers


def build_devices(settings: Settings, network: Network, pipeline: IngestPipeline, mqtt_link,
                  publish, spawn, sleep, clock: Clock):
    """The device registry, its commands and key-value telemetry, wired to MQTT when there is a broker.

    A device answers, polls and goes quiet in real seconds, so the registry's
    offline timer and the commands' timeouts and long-polls run on the wall
    clock; telemetry is stamped and checked on the product's `clock`.
    """
    real = SystemClock()
    from app.adapters.sqlite_registry import SqliteRegistry
    from app.services.device_commands import CommandBook
    from app.services.device_registry import DeviceRegistry
    from app.services.telemetry import TelemetryService

    repository = SqliteRegistry(settings.devices_db_path)
    mqtt_devices = None
    if settings.redis_url:   # a device registered on one instance works on all
        from app.services.cluster.shared_devices import SharingRepository
        repository = SharingRepository(repository)
    registry = DeviceRegistry(repository, network, default_timeout_s=settings.command_timeout_s,
                              offline_after_s=settings.device_offline_after_s,
                              on_change=lambda view: publish(DeviceChanged(view)),
                              clock=real, spawn=spawn, sleep=sleep)
    book = CommandBook(repository, registry, on_change=lambda command: publish(CommandStateChanged(command)),
                       expiry_s=settings.command_expiry_s, clock=real, spawn=spawn, sleep=sleep)
    registry.on_back = lambda device_id: publish(DeviceReturned(device_id))
    telemetry = TelemetryService(registry, pipeline.ingest, clock, settings.max_clock_skew_s)
    if mqtt_link is not None:
        from urllib.parse import unquote, urlparse

        from app.adapters.mqtt_devices import MqttDevices
        mqtt_devices = MqttDevices(mqtt_link, registry, telemetry, book, settings.telemetry_max_bytes)
        if settings.mqtt_dynsec:
            from app.adapters.dynsec import DynamicSecurity
            username = urlparse(settings.mqtt_url).username
            registry.accounts = DynamicSecurity(mqtt_link, unquote(username) if username else None,
                                                spawn, sleep, prefix=settings.mqtt_topic_prefix)
    return registry, book, telemetry, mqtt_devices


def build_engine(settings: Settings, network: Network, store: DataStore, controls: ControlService,
                 alerts: AlertBook, history: HistoryRepository, forecaster: DemandForecaster,
                 publish, spawn, sleep, clock) -> DecisionEngine:
    """The decision engine from its parts (see app/services/engine.py).

    It and its decision book raise PlanChanged and DecisionMade on the bus;
    their handlers broadcast, share and record.
    """
    zones = [z.id for z in network.of_kind("zone")]
    leaks = LeakWatch(network, alerts, LeakDetector(
        zones, settings.leak_excess_ratio, settings.leak_pressure_drop_ratio,
        settings.leak_night_excess_ratio, settings.local_utc_offset_h))
    scheduler = ReplanScheduler(network, lambda why: None, spawn, sleep, clock=clock,
                                interval_s=settings.routing_interval_s, debounce_s=settings.routing_debounce_s,
                                demand_trigger=settings.routing_demand_trigger)
    horizon = horizon_within(network, settings.plan_horizon_h, settings.plan_max_columns)
    if horizon < settings.plan_horizon_h:
        logger.warning("network of %d links: planning %d hourly steps, not PLAN_HORIZON_H=%d, to stay "
                       "within PLAN_MAX_COLUMNS=%d", len(network.links), horizon, settings.plan_horizon_h,
                       settings.plan_max_columns)
    return DecisionEngine(
        network, store, RoutingModel(network, horizon=horizon),
        PlanInputsBuilder(network, store, controls, alerts, leaks, forecaster, Tariff.parse(settings.tariff),
                          settings.local_utc_offset_h, clock),
        Narrator(network, settings.decision_deadband), scheduler, leaks,
        DecisionBook(store, history, controls, publish, clock=clock), publish, clock=clock,
        offload=_offload(settings.async_mode))


def build_what_if(settings: Settings, network: Network, engine: DecisionEngine,
                  controls: ControlService) -> WhatIf:
    """Previews on the engine's horizon when that LP is small (WHAT_IF_MAX_COLUMNS), else one step."""
    model = engine.model
    horizon = model.horizon if model.nvars <= settings.what_if_max_columns else 1
    return WhatIf(network, engine, controls, engine.narrator,
                  make_model=lambda: RoutingModel(network, horizon=horizon, step_h=model.step_h),
                  offload=_offload(settings.async_mode),
                  live_inputs=lambda: engine.builder.build({}, {}, horizon, model.step_h)[0])


def build_credentials(settings: Settings) -> Credentials:
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


def bootstrap(settings: Settings, socketio, *, clock: Clock | None = None,
              history: HistoryRepository | None = None) -> Services:
    """Build the whole service graph; `clock` and `history` may be given (fakes in a test).

    Without a `clock`, SIMULATOR_SPEED picks it (app.domain.clock.clock_for).
    """
    spawn, sleep = socketio.start_background_task, socketio.sleep
    clock = clock or clock_for(settings.simulator_speed)
    prometheus = CollectorRegistry(auto_describe=False)
    bus = MessageBus(prometheus)
    publish = bus.publish

    # Adapters.
    network = load_network(settings.network_file)
    if clock.rate > 1:   # a time-lapse: each sensor reports at most once a simulator tick
        network.report_at_most_every(clock.rate * TICK_S)
    # The alert book is built after history; these look it up when called.
    history = history or build_history(
        settings, spawn, sleep, on_failing=lambda detail: raise_history_alert(alerts, detail),
        on_recovered=lambda detail: alerts.clear("history", "history_write_failing"))

    # Services.
    metrics = Metrics(prometheus, spawn=spawn, sleep=sleep)
    store = DataStore(settings.max_sensors, settings.recent_points, clock=clock,
                      fusion_window_s=settings.fusion_window_s)
    broadcaster = Broadcaster(
        socketio, "/live",
        interval_s=settings.broadcast_interval_ms / 1000,
        minor_interval_s=settings.minor_interval_ms / 1000,
        deadband=network.deadband,
        on_frame=lambda size: metrics.frame(),
        leading_edge=settings.broadcast_leading_edge)
    # The alert book schedules in clock seconds (shelf expiry); the task sleeps the real wait.
    alerts = AlertBook(publish, clock=clock,
                       schedule=lambda delay, run: spawn(lambda: (sleep(clock.real_seconds(delay)), run())))
    pipeline = IngestPipeline(store, publish, metrics, registry=network,
                              annotators=[DataQuality().annotate], clock=clock,
                              max_clock_skew_s=settings.max_clock_skew_s)
    mqtt_link = None
    if settings.mqtt_url:
        from app.adapters.mqtt import MqttLink
        mqtt_link = MqttLink(settings.mqtt_url, settings.mqtt_topic_prefix, settings.mqtt_session_id,
                             pipeline.ingest_messages, metrics, spawn, sleep, settings.max_body_bytes,
                             publish=publish,
                             share_group=settings.mqtt_share_group if settings.redis_url else None)
    registry, device_commands, telemetry, mqtt_devices = build_devices(settings, network, pipeline, mqtt_link,
                                                         publish, spawn, sleep, clock)
    # A control on a target a registered device drives becomes that device's command.
    commands: CommandPublisher = DeviceCommandRouter(mqtt_link or MemoryCommands(), registry,
                                                     device_commands)
    controls = ControlService(network, alerts, publish, mode=settings.operating_mode, clock=clock)
    zones = [z.id for z in network.of_kind("zone")]
    # Weather hours from the sources (observed and forecast) as demand covariates.
    weather_effect = WeatherEffect()
    forecaster = DemandForecaster(
        zones, {s.id: s.node for s in network.sensors.values()
                if s.metric == "flow" and s.node in zones},
        on_update=lambda view: publish(ForecastUpdated(view)),
        base_demand={z.id: z.demand for z in network.of_kind("zone") if z.demand}, weather=weather_effect,
        utc_offset_h=settings.local_utc_offset_h)
    engine = build_engine(settings, network, store, controls, alerts, history, forecaster,
                          publish, spawn, sleep, clock)
    demo_reset = DemoReset()
    demo_reset.register("sensors", lambda _: store.forget(lambda sid: sid in network.sensors))
    demo_reset.register("alerts", alerts.reset)
    demo_reset.register("decisions", lambda _: store.clear_decisions())
    controls.reset_demo = demo_reset.run
    thresholds = ThresholdMonitor(network, alerts, settings.alert_clear_after_s)
    sensor_index = SensorIndex({(s.node, s.metric): s.id for s in network.sensors.values()})
    wqi_stations = WqiStations()
    sources = build_sources(settings, pipeline, sensor_index, spawn,
                            on_weather=weather_effect.observe_weather)
    views = LiveViews(network, store, history, alerts, controls, engine, forecaster, commands, metrics,
                      wqi_stations, stale_after_s=settings.stale_after_s, clock=clock,
                      devices=(lambda: mqtt_link.devices) if mqtt_link else dict,
                      mqtt_status=mqtt_link.status if mqtt_link else (lambda: {"state": "disabled"}),
                      sources=sources)
    store.stale_after = views.stale_after
    monitor = Monitor(network, store, alerts, views.health, publish, spawn, sleep, clock=clock)

    simulator = None
    if network.sensors:
        simulation = NetworkSimulation(network, seed=settings.simulator_seed or 0,
                                       start=clock(),
                                       events_per_hour=settings.simulator_events_per_hour,
                                       utc_offset_h=settings.local_utc_offset_h)
        simulator = Simulator(simulation, lambda items: pipeline.ingest(items, "simulator"),
                              spawn=spawn, sleep=sleep, clock=clock, autostart=settings.simulator_on)

    leader_work = [engine, monitor]
    cluster = shared = None
    if settings.redis_url:
        cluster, shared, leader_work = build_cluster(
            settings, network=network, store=store, history=history, broadcaster=broadcaster,
            alerts=alerts, controls=controls, engine=engine, registry=registry, publish=publish,
            leader_work=[*leader_work, *(c for c in (sources, simulator) if c is not None)],
            mqtt_link=mqtt_link, spawn=spawn, sleep=sleep, clock=clock)
        views.cluster = cluster

    logs = LogRing()
    logging.getLogger().addHandler(logs)
    services = Services(
        settings=settings, clock=clock, bus=bus, prometheus=prometheus,
        tokens=build_credentials(settings), network=network, history=history, metrics=metrics,
        store=store, broadcaster=broadcaster, alerts=alerts, pipeline=pipeline, commands=commands,
        controls=controls, forecaster=forecaster, engine=engine, decisions=engine.book, thresholds=thresholds,
        sensor_index=sensor_index, wqi_stations=wqi_stations,
        monitor=monitor, views=views, logs=logs, mqtt=mqtt_link, simulator=simulator,
        sources=sources, cluster=cluster, devices=registry, device_commands=device_commands,
        telemetry=telemetry, mqtt_devices=mqtt_devices, shared=shared,
        what_if=build_what_if(settings, network, engine, controls))
    # In a cluster, sources and simulator start and stop with the lease (inside leader_work).
    services.components = [c for c in (metrics, registry, device_commands, history, broadcaster, cluster,
                                       *leader_work, mqtt_link,
                                       *((simulator, sources) if cluster is None else ()))
                           if c is not None]
    for event_type, handlers in handlers_for(services).items():
        for handler in handlers:
            bus.subscribe(event_type, handler)
    prometheus.register(ServicesCollector(metrics, store=store, history=history, alerts=alerts,
                                          mqtt=mqtt_link, tick_lateness_ms=broadcaster.tick_lateness_ms))
    return services
