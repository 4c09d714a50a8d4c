"""The bootstrap's one clock, seen through the API: a manual clock moves a simulated day.

The app is built with a ManualClock and its simulator is stepped by hand on
that clock, so a day of readings, forecasts and plans passes in a second of
real time, with no sleeping. app/domain/clock.py explains which parts follow
the clock and which stay on real time.
"""
from __future__ import annotations

from app.domain.clock import iso, ManualClock
from app.services.forecast import SLOTS_PER_DAY

# Midnight UTC, a Monday (2023-11-13); 05:30 in Bengaluru (LOCAL_UTC_OFFSET_H=5.5).
MIDNIGHT = 1_699_833_600.0


def drive(bhs, clock: ManualClock, seconds: float, step_s: float, only: set[str] | None = None) -> None:
    """Run the app's simulator over `seconds` of clock time, as its background task would
    (`only`: ingest just these sensors' readings, to keep a long run quick)."""
    simulation = bhs.simulator.simulation
    for _ in range(int(seconds / step_s)):
        readings = simulation.step(clock.advance(step_s))
        if only is not None:
            readings = [r for r in readings if r["sensor_id"] in only]
        if readings:
            bhs.pipeline.ingest(readings, "simulator")


def test_the_forecast_learns_every_slot_of_a_day_on_the_apps_clock(make_app):
    clock = ManualClock(MIDNIGHT)
    app = make_app(clock=clock, simulator_events_per_hour=0)
    bhs, client = app.extensions["bhs"], app.test_client()
    assert client.get("/api/forecast").json["zones"][0]["slots_learned"] == 0
    # A reading of each zone's inflow every 5 minutes of clock time, for a day.
    drive(bhs, clock, 86_400 + 900, step_s=300, only=set(bhs.forecaster.flow_sensors))
    zones = client.get("/api/forecast").json["zones"]
    assert len(zones) == len(bhs.forecaster.zones)
    # Three readings a slot: now and then the data-quality jump test flags the steep
    # morning rise as suspect, and a slot with no good reading is not learned.
    assert all(z["method"] == "profile x level" for z in zones)
    assert min(z["slots_learned"] for z in zones) >= SLOTS_PER_DAY - 4
    assert max(z["slots_learned"] for z in zones) == SLOTS_PER_DAY
    # History has the day too, stamped on the clock.
    points = client.get("/api/history/Z_SOUTH.flow?start=-25h&resolution=raw").json["points"]
    assert len(points) > 200


def test_the_plans_hours_and_tariff_periods_follow_the_clock(make_app):
    clock = ManualClock(MIDNIGHT)                       # 05:30 local: the night tariff
    app = make_app(clock=clock, simulator_events_per_hour=0)
    bhs, client = app.extensions["bhs"], app.test_client()
    drive(bhs, clock, 60, step_s=5)
    bhs.engine.run_once(["test"])
    plan = client.get("/api/plan").json
    now = clock()
    assert plan["created_at"] == iso(now)
    assert [s["start"] for s in plan["steps"][:3]] == [iso(now + k * 3600) for k in range(3)]
    # Default tariff: 6 (22:00-06:00), 8 (06:00-10:00), 7, 8 (18:00-22:00).
    assert [s["tariff"] for s in plan["steps"][:2]] == [6.0, 8.0]

    clock.advance(12 * 3600)                             # half a day later: 17:31 local
    bhs.engine.run_once(["test"])
    later = client.get("/api/plan").json
    assert later["steps"][0]["start"] == iso(clock())
    assert [s["tariff"] for s in later["steps"][:2]] == [7.0, 8.0]


def test_the_live_snapshot_carries_the_servers_clock_for_the_dashboards_ages(make_app):
    clock = ManualClock(MIDNIGHT)
    app = make_app(clock=clock)
    live = app.extensions["socketio"].test_client(app, namespace="/live")
    try:
        snapshot = next(m["args"][0] for m in live.get_received("/live") if m["name"] == "snapshot")
    finally:
        live.disconnect("/live")
    assert snapshot["clock"] == {"now": "2023-11-13T00:00:00Z", "rate": 1.0}
