"""The simulation is reproducible, and each event leaves its signature."""
from statistics import mean

import pytest

from app.adapters.network_files import load_network
from app.config import BUNDLED_NETWORK
from app.domain.clock import ManualClock
from app.services.metrics import Metrics
from app.services.network import Network
from app.services.pipeline import IngestPipeline
from app.services.simulation import NetworkSimulation, diurnal
from app.services.store import DataStore

START = 1_767_225_600.0   # 2026-01-01 00:00 UTC, a Thursday


@pytest.fixture(scope="module")
def net():
    return load_network(BUNDLED_NETWORK)


def run(sim, seconds, step=5.0, t0=None):
    """Readings per sensor over `seconds` of wall time from `t0`."""
    t = sim.t if t0 is None else t0
    series: dict[str, list[tuple[float, float]]] = {}
    end = t + seconds
    while t < end:
        t += step
        for r in sim.step(t):
            series.setdefault(r["sensor_id"], []).append((t, r["value"]))
    return series


def values(series, sensor_id, after=None, before=None):
    return [v for t, v in series[sensor_id] if (after is None or t >= after) and (before is None or t < before)]


def test_seeded_runs_are_identical_and_seeds_differ(net):
    a = run(NetworkSimulation(net, seed=7, start=START), 300)
    b = run(NetworkSimulation(net, seed=7, start=START), 300)
    c = run(NetworkSimulation(net, seed=8, start=START), 300)
    assert a == b
    assert a != c
    assert set(a) == set(net.sensors)     # every registered sensor reported


def test_diurnal_profile_has_two_peaks_and_mean_one():
    day = [diurnal(h / 10, weekend=False) for h in range(240)]
    assert mean(day) == pytest.approx(1.0, abs=0.05)
    assert max(day[60:90]) > 1.2 and max(day[180:210]) > 1.1 and day[30] < 0.8


def test_values_move_gradually(net):
    series = run(NetworkSimulation(net, seed=3, start=START), 600)
    flows = values(series, "Z_SOUTH.flow")
    assert len(set(flows)) > 10
    steps = [abs(b - a) / a for a, b in zip(flows, flows[1:])]
    assert max(steps) < 0.05          # no jumps without an event


def test_leak_raises_inflow_and_lowers_pressure_in_its_zone(net):
    sim = NetworkSimulation(net, seed=1, start=START)
    before = run(sim, 300)
    sim.trigger("leak", "Z_SOUTH", magnitude=1.5, duration_s=600)
    during = run(sim, 300)
    t_settled = sim.t - 200
    assert mean(values(during, "Z_SOUTH.flow", after=t_settled)) > 1.15 * mean(values(before, "Z_SOUTH.flow"))
    assert mean(values(during, "Z_SOUTH.pressure_1", after=t_settled)) < mean(values(before, "Z_SOUTH.pressure_1")) - 5
    # Another zone is unaffected.
    assert mean(values(during, "Z_NORTH.flow")) == pytest.approx(mean(values(before, "Z_NORTH.flow")), rel=0.05)


def test_contamination_raises_turbidity_and_fc_at_the_source(net):
    sim = NetworkSimulation(net, seed=1, start=START)
    before = run(sim, 120)
    sim.trigger("contamination", "SRC_CWSS_5", magnitude=1.0, duration_s=600)
    during = run(sim, 240)
    late = sim.t - 150
    assert mean(values(during, "SRC_CWSS_5.turbidity", after=late)) > 10 * mean(values(before, "SRC_CWSS_5.turbidity"))
    assert min(values(during, "SRC_CWSS_5.fc", after=late)) > 5000
    assert max(values(during, "SRC_CWSS_4.fc")) < 1000


def test_pump_failure_and_source_outage_stop_their_flow(net):
    sim = NetworkSimulation(net, seed=1, start=START)
    run(sim, 60)
    sim.trigger("source_outage", "SRC_CWSS_4", 1.0, 600)
    sim.trigger("pump_failure", "P_TAT_BNP", 1.0, 600)
    during = run(sim, 200)
    late = sim.t - 100
    assert max(values(during, "SRC_CWSS_4.flow", after=late)) == 0
    assert max(values(during, "PS_B_NARAYANAPURA.flow", after=late)) == 0
    assert max(values(during, "PS_B_NARAYANAPURA.power", after=late)) == 0
    # The other Cauvery stages take over.
    assert mean(values(during, "SRC_CWSS_5.flow", after=late)) > 0


def test_demand_surge_and_baseline_scale_demand(net):
    sim = NetworkSimulation(net, seed=1, start=START)
    before = mean(values(run(sim, 120), "Z_EAST.flow"))
    sim.trigger("demand_surge", "Z_EAST", 1.0, 900)
    surged = mean(values(run(sim, 200), "Z_EAST.flow", after=sim.t - 100))
    assert surged > 1.2 * before
    sim.set_baseline("all", 0.5)
    halved = mean(values(run(sim, 100), "Z_NORTH.flow", after=sim.t - 50))
    assert halved < 0.6 * before * 230 / 200


def test_readings_pass_the_device_validation_path(net):
    clock = ManualClock(START)
    store = DataStore(10_000, 10, clock=clock)
    pipeline = IngestPipeline(store, lambda event: None, Metrics(), registry=net, clock=clock)
    sim = NetworkSimulation(net, seed=2, start=START)
    for t in range(5, 120, 5):
        records = pipeline.ingest(sim.step(clock.advance(5)), "simulator")
        assert all(r.unit and r.node_id for r in records)
    assert store.sensor_count() == len(net.sensors)


def test_bad_event_targets_are_refused(net):
    from app.errors import InvalidInput
    sim = NetworkSimulation(net, seed=1, start=START)
    with pytest.raises(InvalidInput):
        sim.trigger("leak", "SRC_CWSS_5", 1, 60)       # a source is no zone
    with pytest.raises(InvalidInput):
        sim.set_baseline("Z_NOWHERE", 1.2)
