"""Browser safety: CORS allow-list and security headers on HTML responses."""
from __future__ import annotations

from flask import Flask

from app.security import API_KEY_HEADER, AUTHORIZATION_HEADER

# Only our own assets. Socket.IO's websocket is same-origin ('self' covers ws:
# and wss: to this host in CSP3). Styles set from script through the CSSOM
# (uPlot, the bars) are not inline style attributes and need no exception.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
       "frame-ancestors 'none'; form-action 'self'")
# On every response, unless the view set its own.
EVERY_RESPONSE = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
# On HTML pages too.
HTML_PAGES = (("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"))


def register_headers(app: Flask, cors_origins: list[str]) -> None:
    if cors_origins:
        from flask_cors import CORS
        CORS(app, resources={r"/api/*": {"origins": cors_origins}},
             allow_headers=[AUTHORIZATION_HEADER, "Content-Type", API_KEY_HEADER], max_age=600)

    @app.after_request
    def security_headers(response):
        # One pass over the names the view set, then plain appends: Headers.setdefault
        # looks each name up and raises a KeyError inside when it is absent, which
        # single-reading ingest paid on every request.
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        extra = EVERY_RESPONSE + HTML_PAGES if response.mimetype == "text/html" else EVERY_RESPONSE
        for name, value in extra:
            if name.lower() not in present:
                headers.add(name, value)
        return response
