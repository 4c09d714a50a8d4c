"""The operator dashboard: the page, and its service worker at the site root."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    return render_template("index.html")


@bp.get("/sw.js")
def service_worker():
    # Served from the root so that its scope covers the page at `/`.
    reply = send_from_directory(current_app.static_folder, "sw.js", mimetype="text/javascript")
    reply.headers["Cache-Control"] = "no-cache"
    return reply
