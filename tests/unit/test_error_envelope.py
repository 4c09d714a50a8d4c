"""Every path answers errors in the contract's envelope: unknown paths, wrong methods.

In process (Flask's test client over the real app), walking the URL map so a
new route cannot slip out of the envelope.
"""
from __future__ import annotations

import re

import pytest

from app import create_app
from app.config import Settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(async_mode="threading", simulator="off", operator_tokens="ops=t",
                        instance_dir=tmp_path_factory.mktemp("instance"))
    return create_app(settings).test_client()


def assert_envelope(reply, *statuses):
    assert reply.status_code in statuses, reply.data[:200]
    assert reply.content_type.startswith("application/json"), reply.content_type
    error = reply.get_json()["error"]
    assert error["code"] in ("not_found", "method_not_allowed")
    assert error["message"] and isinstance(error["details"], list)


def concrete(rule) -> str:
    """A path for a rule, each variable filled with a value no route knows."""
    return re.sub(r"<(?:path:)?[^>]+>", "no-such-thing", rule.rule)


@pytest.mark.parametrize("path", [
    "/nope", "/api/nope", "/api/sensors/a/b/c", "/static/nope.js", "/static/vendor/nope.css",
    "/api/alerts/no-such-alert", "/api/simulation/nope", "/docs/nope", "/api/v9/anything",
])
def test_unknown_paths_answer_404_in_the_envelope(client, path):
    assert_envelope(client.get(path), 404)
    for method in METHODS[1:]:
        # A path under a GET-only pattern (/static/...) is a 405 for other methods.
        assert_envelope(client.open(path, method=method), 404, 405)


def test_every_route_answers_wrong_methods_with_405_in_the_envelope(client):
    app = client.application
    by_path: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        by_path.setdefault(concrete(rule), set()).update(rule.methods)
    urls = app.url_map.bind("localhost")
    checked = 0
    for path, allowed in by_path.items():
        for method in METHODS:
            if method in allowed or urls.test(path, method):
                continue     # some route (e.g. /api/alerts/<id> for /api/alerts/ack) takes it
            reply = client.open(path, method=method)
            assert_envelope(reply, 405)
            assert set(reply.headers["Allow"].replace(" ", "").split(",")) >= allowed - {"OPTIONS", "HEAD"}
            checked += 1
    assert checked > 40      # the walk really covered the app's routes


def test_latest_of_an_unknown_sensor_keeps_its_legacy_shape_beside_the_envelope(client):
    reply = client.get("/api/latest/never-seen")
    assert reply.status_code == 404
    body = reply.get_json()
    assert body["found"] is False and body["sensorId"] == "never-seen"
    assert body["error"]["code"] == "not_found"


def test_unknown_alert_actions_are_404_in_the_envelope(client):
    for action in ("ack", "shelve", "unshelve"):
        reply = client.post(f"/api/alerts/nope/{action}", json={"duration_s": 60},
                            headers={"Authorization": "Bearer t"})
        assert reply.status_code == 404 and reply.get_json()["error"]["code"] == "not_found"
