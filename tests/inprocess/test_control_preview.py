"""POST /api/control/preview: the consequence of a control from the plan, with nothing applied."""
from __future__ import annotations

import pytest

from tests.inprocess.conftest import OPERATOR_HEADERS

PREVIEW = "/api/control/preview"


@pytest.fixture
def planned(bhs):
    """The app with a plan in force, as after its first re-plan."""
    bhs.engine.run_once(["test start"])
    assert bhs.engine.plan is not None and bhs.engine.status == "optimal"
    return bhs


def test_a_preview_names_the_cut_from_the_plan_and_changes_nothing(client, planned, live):
    live.get_received("/live")                      # the snapshot
    bhs = planned
    plan, routing = bhs.engine.plan, client.get("/api/routing").json
    decisions = client.get("/api/decisions?limit=100").json
    audit = client.get("/api/controls", headers=OPERATOR_HEADERS).json
    events = {m: len(bhs.history.events(m, 1000)) for m in ("decision", "control", "alert")}
    solves = client.get("/api/status").json["decisions"]["solves"]

    reply = client.post(PREVIEW, json={"action": "isolate", "target": "SRC_CWSS_4"}, headers=OPERATOR_HEADERS)
    assert reply.status_code == 200, reply.json
    preview = reply.json["preview"]
    planned_output = plan.sources["SRC_CWSS_4"]
    assert preview["status"] == "optimal" and preview["feasible"] is True
    assert preview["sentence"].startswith(f"Isolating Cauvery WSS Stage IV cuts {planned_output:.0f} MLD")
    assert "plan" in preview["basis"]
    cwss4 = next(s for s in preview["sources"] if s["node_id"] == "SRC_CWSS_4")
    assert (cwss4["planned"], cwss4["would_be"]) == (planned_output, 0.0)

    # Nothing happened: the plan, the routing view, decisions, audit, history and /live are as they were.
    assert bhs.engine.plan is plan and client.get("/api/status").json["decisions"]["solves"] == solves
    assert client.get("/api/routing").json == routing
    assert client.get("/api/decisions?limit=100").json == decisions
    assert client.get("/api/controls", headers=OPERATOR_HEADERS).json == audit
    assert {m: len(bhs.history.events(m, 1000)) for m in events} == events
    assert bhs.controls.isolated == set() and "SRC_CWSS_4" not in bhs.engine.plan_inputs.isolated
    assert live.get_received("/live") == []
    # The real control, by contrast, is applied and audited.
    assert client.post("/api/control", json={"action": "isolate", "target": "SRC_CWSS_4"},
                       headers=OPERATOR_HEADERS).status_code == 200
    assert bhs.controls.isolated == {"SRC_CWSS_4"}


def test_a_preview_needs_an_operator_token_in_bearer(client, planned):
    body = {"action": "isolate", "target": "SRC_CWSS_4"}
    assert client.post(PREVIEW, json=body).status_code == 401
    wrong = client.post(PREVIEW, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "unauthorized"
    in_key = client.post(PREVIEW, json=body, headers={"X-API-Key": OPERATOR_HEADERS["Authorization"][7:]})
    assert in_key.status_code == 401 and "X-API-Key" in in_key.json["error"]["message"]


@pytest.mark.parametrize("body, status, field", [
    ({"action": "set_valve", "target": "V_CJF_WEST", "value": 140}, 422, "value"),
    ({"action": "set_pump", "target": "P_TAT_SOUTH", "value": "sideways"}, 422, "value"),
    ({"action": "set_pump", "target": "V_CJF_WEST", "value": "off"}, 422, "target"),
    ({"action": "isolate"}, 422, "target"),
    ({"action": "explode", "target": "SRC_CWSS_4"}, 422, "action"),
    ({"action": "isolate", "target": "NOWHERE"}, 404, None),
])
def test_a_bad_control_gets_the_same_answer_as_from_api_control(client, planned, body, status, field):
    preview = client.post(PREVIEW, json=body, headers=OPERATOR_HEADERS)
    control = client.post("/api/control", json=body, headers=OPERATOR_HEADERS)
    assert preview.status_code == control.status_code == status
    assert preview.json == control.json
    assert set(preview.json) == {"error"}
    if field:
        assert preview.json["error"]["details"][0]["field"] == field
    assert client.get("/api/controls", headers=OPERATOR_HEADERS).json["controls"] == []


def test_not_json_is_a_415_in_the_envelope(client, planned):
    reply = client.post(PREVIEW, data="isolate", headers={**OPERATOR_HEADERS, "Content-Type": "text/plain"})
    assert reply.status_code == 415 and reply.json["error"]["code"]


def test_auto_mode_is_previewed_against_the_operators_settings(client, planned):
    reply = client.post(PREVIEW, json={"action": "set_mode", "value": "auto"}, headers=OPERATOR_HEADERS)
    preview = reply.json["preview"]
    assert reply.status_code == 200 and "auto mode" in preview["sentence"]
    assert planned.controls.mode == "manual"
    assert len(preview["details"]) == len(preview["commands"])


def test_without_a_plan_of_its_own_the_server_solves_both_from_live_data(client, bhs):
    """A cluster's follower, or a server before its first plan, still previews (two solves)."""
    assert bhs.engine.plan is None
    reply = client.post(PREVIEW, json={"action": "isolate", "target": "SRC_CWSS_4"}, headers=OPERATOR_HEADERS)
    preview = reply.json["preview"]
    assert reply.status_code == 200 and preview["status"] == "optimal", preview
    assert preview["basis"].startswith("No plan in force on this server: the plan solved now from live data")
    cwss4 = next(s for s in preview["sources"] if s["node_id"] == "SRC_CWSS_4")
    assert cwss4["planned"] > 100 and cwss4["would_be"] == 0.0
    assert preview["sentence"].startswith(f"Isolating Cauvery WSS Stage IV cuts {cwss4['planned']:.0f} MLD")
    auto = client.post(PREVIEW, json={"action": "set_mode", "value": "auto"}, headers=OPERATOR_HEADERS)
    assert auto.status_code == 200 and "auto mode" in auto.json["preview"]["sentence"]
    assert bhs.engine.plan is None and client.get("/api/status").json["decisions"]["solves"] == 0     # still no plan of its own


def test_the_preview_is_in_the_openapi_document(client):
    operation = client.get("/openapi.json").json["paths"]["/api/control/preview"]["post"]
    assert operation["security"] == [{"operator": []}]
    assert {"200", "401", "404", "422"} <= set(operation["responses"])


def test_past_what_if_max_columns_the_preview_solves_one_step(make_app):
    """A network whose plan LP is too big to re-solve within a request is previewed on one step."""
    app = make_app(what_if_max_columns=100)
    bhs = app.extensions["bhs"]
    bhs.engine.run_once(["test start"])
    assert bhs.engine.model.horizon == 24
    reply = app.test_client().post(PREVIEW, json={"action": "isolate", "target": "SRC_CWSS_4"},
                                   headers=OPERATOR_HEADERS)
    preview = reply.json["preview"]
    assert reply.status_code == 200 and preview["status"] == "optimal"
    assert "over 1 h" in preview["basis"] and preview["totals"]["horizon_h"] == 1.0
    assert preview["sentence"].startswith("Isolating Cauvery WSS Stage IV cuts ")
