"""SIMULATOR_SPEED > 1 runs the whole server on the simulated clock, not only the simulator.

The real server at 900x: a simulated hour passes in four real seconds, and
the forecast, the readings' stamps, history and the plan's hours all see it.
Before issue 19's one clock, only the simulator's physics ran fast; the
forecast learned one slot in ten minutes at 300x.
"""
from __future__ import annotations

import time
from datetime import datetime

import requests

from testkit.helpers import wait_for

SPEED = 900
# Four simulated hours: 16 forecast slots, 16 real seconds at 900x.
SLOTS = 16
# Bound on the wait: start-up plus the slots, with room for a loaded machine.
TIMEOUT_S = 90


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_time_lapse_shows_simulated_hours_in_the_forecast_history_and_plan(start_server):
    server = start_server(SIMULATOR="on", SIMULATOR_SPEED=str(SPEED), SIMULATOR_EVENTS_PER_HOUR="0")
    get = lambda path: requests.get(server.url + path, timeout=5).json()    # noqa: E731
    assert get("/api/simulation")["speed"] == SPEED

    zones = wait_for(lambda: get("/api/forecast")["zones"],
                     lambda zs: zs and min(z["slots_learned"] for z in zs) >= SLOTS,
                     timeout=TIMEOUT_S, every=1)
    assert all(not z["estimate"] for z in zones)

    # Readings are stamped on the simulated clock: hours ahead of the wall clock by now.
    latest = get("/api/sensors/Z_SOUTH.flow")
    assert seconds(latest["timestamp"]) > time.time() + 3 * 3600
    # History holds those hours of simulated time.
    points = get("/api/history/Z_SOUTH.flow?start=-6h&resolution=raw")["points"]
    stamps = sorted(seconds(p["t"]) if isinstance(p["t"], str) else p["t"] for p in points)
    assert stamps[-1] - stamps[0] > 3 * 3600
    # The plan's hours start at the simulated now.
    plan = wait_for(lambda: get("/api/plan"), lambda p: p["steps"] and
                    seconds(p["steps"][0]["start"]) > time.time() + 3600, timeout=30, every=1)
    assert len(plan["steps"]) > 1
