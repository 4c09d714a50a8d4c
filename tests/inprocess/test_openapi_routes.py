"""/openapi.json documents every route the app registers, with the same methods.

spectree finds our views through `app.api.openapi.document`, which leaves the
plain view on the route and hangs spectree's metadata on `__wrapped__`. A
spectree that does not follow `__wrapped__` (every release before 3.0.0,
1.4.0 among them, which `spectree>=1.4` admitted) yields a document with
zero paths, and the schema-driven fuzz test then silently tests nothing.
Here that fails loudly, as does a new route nobody documented.
"""
from __future__ import annotations

import re

# Routes that are pages or files rather than API operations, by endpoint.
NOT_API = {
    "static": "the dashboard's files under /static/",
    "dashboard.index": "the dashboard page (/)",
    "dashboard.service_worker": "the dashboard's service worker (/sw.js)",
    "openapi.openapi_json": "the document itself (/openapi.json)",
    "openapi_apidoc": "spectree's own copy of the document (/apidoc/openapi.json)",
    "openapi.docs": "the Swagger UI page (/docs)",
}
# Flask adds these to every rule; OpenAPI documents them nowhere.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
OPERATIONS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}
# `<converter(args):name>` or `<name>` in a Werkzeug rule; `{name}` in OpenAPI.
RULE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


def openapi_path(rule: str) -> str:
    return RULE_VARIABLE.sub(r"{\1}", rule)


def registered(app) -> dict[str, set[str]]:
    """Path -> methods of every API route in the app's URL map."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in NOT_API:
            routes.setdefault(openapi_path(rule.rule), set()).update(rule.methods - IMPLICIT_METHODS)
    return routes


def documented(document: dict) -> dict[str, set[str]]:
    """Path -> methods of every operation in an OpenAPI document."""
    return {path: {key.upper() for key in item if key.upper() in OPERATIONS}
            for path, item in document.get("paths", {}).items()}


def test_openapi_documents_every_registered_route_with_its_methods(app, client):
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    routes, paths = registered(app), documented(reply.get_json())
    assert len(routes) >= 30, f"the URL map looks incomplete: {sorted(routes)}"
    missing = {p: sorted(m - paths.get(p, set())) for p, m in routes.items() if m - paths.get(p, set())}
    extra = {p: sorted(m - routes.get(p, set())) for p, m in paths.items() if m - routes.get(p, set())}
    assert missing == {}, f"registered but not in /openapi.json: {missing}"
    assert extra == {}, f"in /openapi.json but not registered: {extra}"


def test_the_routes_left_out_exist(app):
    """The list of pages left out names real endpoints, so it cannot hide a typo."""
    assert set(NOT_API) <= {rule.endpoint for rule in app.url_map.iter_rules()}


def test_the_comparison_sees_a_document_of_zero_paths():
    """What spectree before 3.0.0 produced: every route shows as missing."""
    assert documented({"openapi": "3.1.0", "paths": {}}) == {}
    assert documented({"paths": {"/api/x/{id}": {"get": {}, "parameters": []}}}) == {"/api/x/{id}": {"GET"}}
    assert openapi_path("/api/alerts/<alert_id:alert_id>/ack") == "/api/alerts/{alert_id}/ack"
    assert openapi_path("/api/v1/<token>/rpc/<string(length=8):command_id>") == "/api/v1/{token}/rpc/{command_id}"
