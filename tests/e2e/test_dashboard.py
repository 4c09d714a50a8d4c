"""The operator dashboard in a real browser, against a real server with the simulator on."""
from __future__ import annotations

import time

import pytest
import requests

from playwright.sync_api import expect

from tests.conftest import OPERATOR_TOKEN, ServerProcess, free_port

SIMULATED = {"SIMULATOR": "on", "SIMULATOR_SEED": "3", "SIMULATOR_EVENTS_PER_HOUR": "0",
             "ALERT_CLEAR_AFTER_S": "2"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("dash"), **SIMULATED).start()
    yield proc
    proc.stop()


def text(page, selector):
    return page.page.locator(selector).inner_text()


def poll(page, js: str, timeout: float = 20.0, arg=None):
    """Wait until `js` (a function source) returns something truthy in the page.

    Playwright's wait_for_function compiles its predicate with eval, which the
    page's Content-Security-Policy (rightly) forbids; evaluate() does not.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.page.evaluate(js, arg)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {js}"
        time.sleep(0.2)


def use_token(page):
    page.page.fill("#token", OPERATOR_TOKEN)
    page.page.click("#token-form button[type=submit]")
    page.page.wait_for_selector("#control-result.ok")


def test_page_loads_without_errors_and_shows_the_network(live_server, open_page, artifacts):
    page = open_page(live_server.url)
    page.page.wait_for_selector("#connection.live")
    page.page.wait_for_selector("#map .node.zone")
    page.page.wait_for_selector("#zones .bar")
    page.page.locator("#decisions li").first.wait_for(timeout=20_000)
    page.page.click("[data-node=Z_SOUTH]")
    page.page.wait_for_selector("#detail tr[data-sensor='Z_SOUTH.flow'] .u-wrap, #detail tr[data-sensor='Z_SOUTH.flow'] canvas",
                                timeout=20_000)
    assert page.page.locator("#map .node").count() == 31
    assert "MLD" in text(page, "#detail tr[data-sensor='Z_SOUTH.flow']")
    assert text(page, "#health-score").isdigit()
    page.page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert page.errors == []


def test_live_values_change_while_the_simulator_runs(live_server, open_page):
    page = open_page(live_server.url)
    page.page.wait_for_selector("#connection.live")
    page.page.wait_for_selector("[data-node=Z_NORTH]")
    page.page.click("[data-node=Z_NORTH]")
    cell = page.page.locator("#detail tr[data-sensor='Z_NORTH.pressure_1'] .v")
    expect(cell).to_contain_text(" m", timeout=15_000)
    first = cell.inner_text()
    expect(cell).not_to_have_text(first, timeout=20_000)
    assert page.errors == []


def test_an_alert_appears_and_is_acknowledged(live_server, open_page):
    page = open_page(live_server.url)
    page.page.wait_for_selector("#connection.live")
    requests.post(live_server.url + "/api/ingest", json={"sensor_id": "e2e.chlorine", "metric": "chlorine",
                                                         "unit": "mg/L", "value": 0.02})
    item = page.page.locator("#alerts li", has_text="chlorine 0.02")
    item.wait_for(timeout=10_000)
    assert "CRITICAL" in item.inner_text()          # severity in words, not colour alone
    use_token(page)
    item.locator("button.ack").click()
    page.page.locator("#alerts li", has_text="acknowledged by ops").wait_for(timeout=10_000)
    alert = next(a for a in requests.get(live_server.url + "/api/alerts").json()["alerts"]
                 if a.get("sensor_id") == "e2e.chlorine")
    assert alert["state"] == "acknowledged"


def test_a_refused_control_shows_its_error(live_server, open_page):
    page = open_page(live_server.url)
    page.page.wait_for_selector("#connection.live")
    page.page.fill("#token", "not-the-token")
    page.page.click("#token-form button[type=submit]")
    page.page.click("#isolate")
    page.page.wait_for_selector("#control-result.error")
    assert "401" in text(page, "#control-result")


def test_triggering_a_leak_from_the_panel_leads_to_a_decision(live_server, open_page):
    page = open_page(live_server.url)
    page.page.wait_for_selector("#connection.live")
    page.page.locator("#decisions li").first.wait_for(timeout=20_000)
    use_token(page)
    before = {li.get_attribute("data-decision") for li in page.page.locator("#decisions li").all()}
    page.page.select_option("#sim-event", "leak")
    page.page.select_option("#sim-target", "Z_WEST")
    page.page.fill("#sim-magnitude", "3")
    page.page.click("#sim-trigger")
    expect(page.page.locator("#control-result.ok")).to_contain_text("Triggered leak", timeout=10_000)
    poll(page, "ids => [...document.querySelectorAll('#decisions li')].some(li => "
               "!ids.includes(li.dataset.decision) && li.textContent.includes('West'))",
         timeout=60, arg=list(before))


def test_live_indicator_follows_the_server_and_offline_reload_shows_saved_data(open_page, tmp_path):
    port = free_port()
    server = ServerProcess(tmp_path, PORT=str(port), **SIMULATED).start()
    try:
        page = open_page(server.url)
        page.page.wait_for_selector("#connection.live")
        page.page.wait_for_selector("#zones .bar")
        page.page.evaluate("navigator.serviceWorker.ready")
        poll(page, "() => (JSON.parse(localStorage.getItem('bhs.snapshot.v1')) || {}).snapshot?.routing")
        server.stop()
        page.page.wait_for_selector("#connection.reconnecting", timeout=15_000)
        assert "RECONNECTING" in text(page, "#connection")

        # Reloaded while the server is down: the shell comes from the service
        # worker, the data from the saved snapshot, marked stale with its age.
        page.page.reload()
        page.page.wait_for_selector("#stale-banner:not([hidden])", timeout=15_000)
        assert "saved data" in text(page, "#stale-banner")
        page.page.wait_for_selector("#zones .bar")
        assert page.page.locator("#zones .bar").count() == 10
        assert "RECONNECTING" in text(page, "#connection")

        server.start()
        page.page.wait_for_selector("#connection.live", timeout=30_000)
        page.page.wait_for_selector("#stale-banner[hidden]", state="attached", timeout=15_000)
    finally:
        server.stop()


def test_with_viewer_tokens_the_page_asks_for_one(open_page, tmp_path):
    server = ServerProcess(tmp_path, VIEWER_TOKENS="wall=screen-token").start()
    try:
        page = open_page(server.url)
        expect(page.page.locator("#connection-text")).to_have_text("TOKEN NEEDED", timeout=15_000)
        page.page.fill("#token", "screen-token")
        page.page.click("#token-form button[type=submit]")
        page.page.wait_for_selector("#connection.live", timeout=15_000)
        page.page.wait_for_selector("#map .node.zone")
    finally:
        server.stop()
