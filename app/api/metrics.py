"""GET /metrics: Prometheus text from this app's own registry (app/services/metrics.py).

The same registry feeds /api/status, so the two always agree.
"""
from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import generate_latest
from spectree import Response as Documented

from app.api.common import require_viewer, services
from app.api.openapi import VIEWER, document
from app.models import ErrorEnvelope

bp = Blueprint("metrics", __name__)
# The text format generate_latest writes.
TEXT_FORMAT = "text/plain; version=0.0.4"


@bp.get("/metrics")
@document(resp=Documented(HTTP_200=None, HTTP_401=ErrorEnvelope, HTTP_403=ErrorEnvelope),
          tags=["operations"], security=VIEWER)
@require_viewer
def metrics():
    return Response(generate_latest(services().prometheus), mimetype=TEXT_FORMAT)
