"""External sources: their state for viewers, a fetch-now for operators (audited)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from app import wire
from app.api.common import require_operator, require_viewer, services
from app.api.openapi import OPERATOR, VIEWER, document, responses
from app.api.read import VIEWER
from app.api.schemas import SourceList, SourceRefreshed
from app.domain import events
from app.errors import NotFound

bp = Blueprint("sources", __name__)


@bp.get("/api/sources")
@document(resp=responses(HTTP_200=SourceList), tags=["sources"], security=VIEWER)
@require_viewer
def listing():
    """Every external source with its state, last success and error, and counts."""
    scheduler = services().sources
    items = [wire.source(s) for s in scheduler.listing()] if scheduler else []
    return jsonify(sources=items, count=len(items), enabled=scheduler is not None)


@bp.post("/api/sources/<source_id>/refresh")
@document(resp=responses(HTTP_200=SourceRefreshed), tags=["sources"], security=OPERATOR)
@require_operator
def refresh(source_id: str):
    """Fetch one source now; answers with its state after the fetch."""
    bhs = services()
    if bhs.sources is None or source_id not in bhs.sources.states:
        raise NotFound(f"no source '{source_id}'")
    status = bhs.sources.run(source_id)
    bhs.bus.publish(events.SourceRefreshed(source_id, g.principal, request.remote_addr, status))
    return jsonify(ok=True, source=wire.source(status))
