"""Bengaluru Heart System: `create_app` wires Flask and Socket.IO, nothing more.

The services are built by `app.bootstrap.bootstrap` (the composition root);
the factory hands the resulting container to the blueprints (through
`app.extensions["bhs"]`, read by `app.api.common.services`) and to the
Socket.IO namespaces (through their constructors). Nothing connects at
import time; background tasks start only when `app.extensions["bhs"].start()`
is called (run.py does).
"""
from __future__ import annotations

from flask import Flask
from flask_socketio import SocketIO

from app import api
from app.api import errors
from app.api.headers import register_headers
from app.api.limits import install_limits
from app.bootstrap import Services, bootstrap
from app.config import Settings
from app.realtime.control import ControlNamespace
from app.realtime.live import LiveNamespace


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """`overrides` go to `bootstrap()` (e.g. `clock=`, `history=` in tests)."""
    settings = settings or Settings()
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False

    socketio = SocketIO(app, async_mode=settings.async_mode, json=None,
                        message_queue=settings.message_queue,
                        # None: same-origin only, unless CORS_ORIGINS lists more.
                        cors_allowed_origins=Settings.split(settings.cors_origins) or None)
    services: Services = bootstrap(settings, socketio, **overrides)
    app.extensions["bhs"] = services

    errors.register_error_handlers(app)
    register_headers(app, Settings.split(settings.cors_origins))
    install_limits(app, settings.limiter_storage, [
        (api.ingest.bp, settings.ingest_rate_limit, services.tokens.devices),
        (api.control.bp, settings.control_rate_limit, services.tokens.operators),
        (api.simulation.bp, settings.control_rate_limit, services.tokens.operators),
        (api.alerts.bp, settings.control_rate_limit, services.tokens.operators),
        (api.sources.bp, settings.control_rate_limit, services.tokens.operators)])
    for module in (api.ingest, api.read, api.ready, api.alerts, api.control, api.simulation,
                   api.dashboard, api.metrics, api.openapi, api.sources, api.devices, api.device_api):
        app.register_blueprint(module.bp)
    api.openapi.spec.register(app)
    socketio.on_namespace(LiveNamespace("/live", services.store, services.broadcaster,
                                        services.views.snapshot, services.tokens.viewers))
    socketio.on_namespace(ControlNamespace("/control", services.controls, services.tokens.operators))
    return app
