"""`GET /api/ready`: 200 once this instance can serve, 503 until then (for orchestrators).

A single process is ready as soon as it runs. In a cluster an instance is
ready once its live state is rebuilt from the shared stream and its MQTT
session is drained; until then it answers 503 and says what it waits for.
`/api/health` stays the liveness probe: it answers 200 from the first moment.
"""
from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic import BaseModel
from spectree import Response

from app.api.common import services
from app.api.openapi import document

bp = Blueprint("ready", __name__)


class Readiness(BaseModel):
    ready: bool
    waiting_for: list[str]


@bp.get("/api/ready")
@document(resp=Response(HTTP_200=Readiness, HTTP_503=Readiness), tags=["operations"])
def ready():
    """Readiness for probes: 503 until live state is rebuilt."""
    ok, waiting = services().readiness()
    return jsonify(ready=ok, waiting_for=waiting), 200 if ok else 503
