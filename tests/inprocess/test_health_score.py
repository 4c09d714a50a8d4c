"""GET /api/health's network score counts an open alarm of every severity the alert book takes."""
from __future__ import annotations

import pytest

from app.services.alerts import SEVERITIES, SEVERITY_RANK


def score_with(make_app, severity: str) -> dict:
    app = make_app()
    app.extensions["bhs"].alerts.raise_("MNK-PRES-01", "pressure_low", severity, "pressure below the band")
    answer = app.test_client().get("/api/health")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["network"]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_an_open_alarm_of_any_severity_lowers_the_score_and_says_why(make_app, severity):
    network = score_with(make_app, severity)
    assert network["active_alerts"] == 1
    assert network["score"] < 100
    assert network["reasons"] and "1 open alert(s)" in network["reasons"][0]


def test_a_graver_alarm_costs_more(make_app):
    scores = {severity: score_with(make_app, severity)["score"] for severity in SEVERITIES}
    by_rank = sorted(SEVERITIES, key=SEVERITY_RANK.get)
    assert [scores[s] for s in by_rank] == sorted(scores.values(), reverse=True)
    assert len(set(scores.values())) == len(SEVERITIES)
