"""The forecast shows from the first minute: a labelled profile-based estimate until a slot is learned."""
from __future__ import annotations

import pytest

from app.services.forecast import SLOT_S, DemandForecaster, typical_day


def test_before_any_slot_the_view_is_a_labelled_estimate_then_the_learned_forecast():
    forecaster = DemandForecaster(["Z"], {"Z.flow": "Z"}, base_demand={"Z": 100.0})
    start = 10 * SLOT_S
    [zone] = forecaster.view(start)["zones"]
    assert zone["estimate"] is True and "history too short" in zone["method"]
    assert zone["steps"][0]["demand"] == pytest.approx(100 * typical_day(start + 1.5 * SLOT_S), abs=0.01)
    forecaster.observe("Z", start, 80.0)
    [zone] = forecaster.view(start + 60)["zones"]
    assert "readings so far" in zone["method"] and zone["estimate"]
    forecaster.observe("Z", start + SLOT_S, 80.0)          # the first slot is finished
    [zone] = forecaster.view(start + SLOT_S)["zones"]
    assert zone["estimate"] is False and zone["steps"][0]["demand"] == 80.0


def test_a_day_averages_to_one():
    assert sum(typical_day(m * 60.0) for m in range(1440)) / 1440 == pytest.approx(1.0)
