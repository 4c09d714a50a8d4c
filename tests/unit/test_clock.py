"""Time follows the injected clock: tests move a ManualClock instead of sleeping.

Readings taken without a timestamp are stamped by the pipeline's clock, so
everything that judges reading time (forecast slots, alert clear holds,
leak holds) moves with it; shelf expiry, the re-plan interval and the
simulator's day read the clock directly.
"""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from app.adapters.network_files import load_network
from app.bus import MessageBus
from app.config import BUNDLED_NETWORK
from app.domain.clock import ManualClock, SimulatedClock, SystemClock, clock_for
from app.domain.events import ReadingsAccepted
from app import wire
from app.services.alerts import AlertBook
from app.services.forecast import SLOT_S, SLOTS_PER_DAY, DemandForecaster
from app.services.metrics import Metrics
from app.services.pipeline import IngestPipeline
from app.services.scheduler import TIME_LAPSE_MIN_WAIT_S, ReplanScheduler
from app.services.simulation import NetworkSimulation
from app.services.store import DataStore
from app.services.thresholds import ThresholdMonitor

DAY_S = 86_400.0
# Midnight UTC, a Monday (2023-11-13): slots line up with the day.
MIDNIGHT = 1_699_833_600.0


class Ticker:
    """A monotonic clock that moves only when told (for SimulatedClock)."""

    def __init__(self):
        self.t = 500.0

    def __call__(self):
        return self.t


def wired(clock):
    """A pipeline whose accepted readings feed a forecaster and threshold alerts."""
    network = load_network(BUNDLED_NETWORK)
    bus = MessageBus(CollectorRegistry())
    store = DataStore(1000, 10, clock=clock)
    pipeline = IngestPipeline(store, bus.publish, Metrics(), registry=network, clock=clock)
    forecaster = DemandForecaster(["Z_SOUTH"], {"Z_SOUTH.flow": "Z_SOUTH"})
    bus.subscribe(ReadingsAccepted, lambda event: forecaster.observe_records(event.live))
    alerts = AlertBook(bus.publish, clock=clock)
    thresholds = ThresholdMonitor(network, alerts, clear_after_s=600)
    bus.subscribe(ReadingsAccepted, lambda event: thresholds.observe(event.live))
    return pipeline, forecaster, alerts


# -- the clocks -------------------------------------------------------------------------
def test_a_manual_clock_moves_only_when_advanced():
    clock = ManualClock(1000.0)
    assert clock() == clock.now() == 1000.0
    assert clock.advance(90) == 1090.0 and clock() == 1090.0
    assert clock.rate == 1.0 and clock.real_seconds(60) == 60


def test_a_simulated_clock_starts_at_the_wall_time_and_runs_speed_times_faster():
    ticker = Ticker()
    clock = SimulatedClock(300, monotonic=ticker)
    start = clock()
    assert abs(start - SystemClock()()) < 60          # it starts at the wall time
    ticker.t += 2.0                                   # two real seconds ...
    assert clock() == pytest.approx(start + 600)      # ... are ten simulated minutes
    assert clock.real_seconds(3600) == 12.0           # an hour is twelve real seconds
    with pytest.raises(ValueError):
        SimulatedClock(0)


def test_simulator_speed_picks_the_clock():
    assert isinstance(clock_for(1), SystemClock)
    assert isinstance(clock_for(300), SimulatedClock) and clock_for(300).rate == 300


# -- (a) the forecast learns a simulated day ------------------------------------------
def test_the_forecast_learns_every_slot_of_a_day_the_clock_runs_through():
    clock = ManualClock(MIDNIGHT)
    pipeline, forecaster, _ = wired(clock)
    for _ in range(int(DAY_S / 300) + 1):   # a reading every 5 minutes of clock time, no timestamp
        pipeline.ingest([{"sensor_id": "Z_SOUTH.flow", "value": 200.0}], "simulator")
        clock.advance(300)
    zone = forecaster.view(clock())["zones"][0]
    assert zone["slots_learned"] == SLOTS_PER_DAY
    assert zone["method"] == "profile x level"
    # Its steps are the clock's next slots.
    assert zone["steps"][0]["t"] == (clock() // SLOT_S + 1) * SLOT_S


# -- (b) alert holds and shelves follow the clock ---------------------------------------
def test_an_alert_clears_after_its_hold_of_clock_time():
    clock = ManualClock(MIDNIGHT)
    pipeline, _, alerts = wired(clock)
    pipeline.ingest([{"sensor_id": "Z_SOUTH.ph", "value": 9.6}], "http")
    assert alerts.is_open("Z_SOUTH.ph", "quality_ph")
    for _ in range(10):                        # back in range, nine minutes of clock time
        pipeline.ingest([{"sensor_id": "Z_SOUTH.ph", "value": 7.2}], "http")
        clock.advance(60)
    assert alerts.is_open("Z_SOUTH.ph", "quality_ph")     # in range for 540 s < the 600 s hold
    pipeline.ingest([{"sensor_id": "Z_SOUTH.ph", "value": 7.2}], "http")
    assert not alerts.is_open("Z_SOUTH.ph", "quality_ph")  # 600 s of clock time: cleared


def test_a_shelf_expires_when_the_clock_passes_it_and_waits_the_real_share_of_it():
    clock = SimulatedClock(300, monotonic=Ticker())
    scheduled = []
    alerts = AlertBook(lambda event: None, clock=clock,
                       schedule=lambda delay, run: scheduled.append(delay))
    alarm = alerts.raise_("Z_SOUTH.ph", "quality_ph", "warning", "pH 9.4")
    alerts.shelve(alarm.id, "ops", 3600)
    assert scheduled == [3600]                        # in clock seconds ...
    assert clock.real_seconds(scheduled[0]) == 12.0   # ... which the bootstrap's task sleeps as 12 real s

    manual = ManualClock(MIDNIGHT)
    alerts = AlertBook(lambda event: None, clock=manual)
    alarm = alerts.raise_("Z_SOUTH.ph", "quality_ph", "warning", "pH 9.4")
    shelved = alerts.shelve(alarm.id, "ops", 3600)
    assert wire.alert(shelved)["shelved_until"] == "2023-11-13T01:00:00Z"
    manual.advance(3599)
    assert alerts.expire_shelves() == []
    manual.advance(1)
    assert [a.id for a in alerts.expire_shelves()] == [alarm.id]


# -- the re-plan interval ---------------------------------------------------------------
def scheduler(clock, interval_s):
    return ReplanScheduler(load_network(BUNDLED_NETWORK), lambda why: None, lambda fn: None,
                           lambda s: None, clock=clock, interval_s=interval_s, debounce_s=1.0,
                           demand_trigger=0.15)


def test_the_replan_interval_is_clock_time_with_a_real_floor():
    assert scheduler(SystemClock(), 30).periodic_wait_s() == 30
    # 300x: 3600 simulated seconds are 12 real ones.
    assert scheduler(SimulatedClock(300), 3600).periodic_wait_s() == 12.0
    # 30 simulated seconds would be 0.1 real s: the solver's floor holds.
    assert scheduler(SimulatedClock(300), 30).periodic_wait_s() == TIME_LAPSE_MIN_WAIT_S


# -- the simulator's day ------------------------------------------------------------------
def test_the_simulation_follows_the_clock_it_is_stepped_with():
    """Demand follows the local hour of the clock's time: a clock moved a day
    in quarter hours sees the morning peak and the night trough."""
    network = load_network(BUNDLED_NETWORK)
    clock = ManualClock(MIDNIGHT)
    sim = NetworkSimulation(network, seed=1, start=clock(), utc_offset_h=5.5)
    flows = {}
    for _ in range(96):
        for reading in sim.step(clock.advance(SLOT_S)):
            if reading["sensor_id"] == "Z_SOUTH.flow":
                flows[round(((clock() + 5.5 * 3600) % DAY_S) / 3600)] = reading["value"]
    assert flows[7] > 1.3 * flows[3]          # 07:00 local, the morning peak, over 03:00
